"""The CTP edge (and the back-office folder watcher) as placed actors: it owns the MdApi and TraderApi sessions of a config's
`[ctp]` tables (and, for `fengkong run`, the account bus) and speaks the same ZeroMQ wire
formats the simulator does, so the rest of the system cannot tell CTP from the simulation:

    MdApi      → PUB  [b"T", ticks]  on the endpoint of [[market.feeds]] `ctp.md.feed`
    TraderApi  → PUSH account_events  to accounts.inbound_endpoint (snapshot, trade, order, cancel)
    Executor   → PULL orders / PUB reports on [orders] endpoints (only with ctp.orders.enabled)
    drift      → Correlator.on_events([RiskEvent "account.reconcile_drift"])

Reconciliation asks the account's shard for its view (one call per account per `reconcile_s`,
never per tick). Credentials are read here, in the actor, from the environment or the secrets
file named by `ctp.secrets_file`; they reach no log, journal or return value.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import ray

from actors.common import ACTOR_OPTIONS, actor_name
from rules.sharding import shard_of

log = logging.getLogger(__name__)


@ray.remote(**{**ACTOR_OPTIONS, "max_task_retries": 0})
class CtpIngest:
    def __init__(
        self,
        ctp_table: Any,
        feed_endpoints: dict[str, str],
        accounts: dict[str, Any],
        orders: dict[str, str],
        prefix: str,
        correlator: Any,
    ) -> None:
        from gateways.accounts.bus import AccountBus
        from gateways.ctp.config import CtpConfig, credentials, parse
        from gateways.ctp.md import CtpMarketGateway, exchange_lookup
        from gateways.ctp.orders import CtpOrderRouter
        from gateways.ctp.spi import BusPush
        from gateways.ctp.trader import TraderSession

        cfg: CtpConfig = (
            ctp_table
            if isinstance(ctp_table, CtpConfig)
            else parse(ctp_table, tuple(feed_endpoints))
        )
        self.cfg = cfg
        self.prefix = prefix
        self.n_shards = int(accounts["shards"])
        self.correlator = correlator
        self.bus = None
        if cfg.account_bus:
            log_size = int(accounts.get("bus_log_size", 200_000))
            self.bus = AccountBus(accounts["inbound_endpoint"], accounts["endpoint"],
                                  accounts["snapshot_endpoint"], log_size=log_size).start()  # fmt: skip
        self.push = BusPush(accounts["inbound_endpoint"])
        exchange_of = exchange_lookup()
        flow = Path(cfg.flow_dir)
        self.md = None
        if cfg.md is not None:
            self.md = CtpMarketGateway(cfg.md, feed_endpoints[cfg.md.feed], flow,
                                       credentials=credentials(cfg.md, cfg.secrets_file, "md"),
                                       exchange_of=exchange_of)  # fmt: skip
        self.sessions = {
            inv.account_id: TraderSession(
                inv, self.push, flow, credentials=credentials(inv, cfg.secrets_file, inv.name),
                own_view=self._own_view, on_events=self._events,
                on_instruments=self.md.subscribe if self.md is not None else None,
            )
            for inv in cfg.investors
        }  # fmt: skip
        self.router = None
        if cfg.orders.enabled:
            self.router = CtpOrderRouter(
                cfg.orders.endpoint or orders["endpoint"],
                cfg.orders.reports_endpoint or orders["reports_endpoint"],
                self.sessions, cfg.orders.refs_path or flow / "order_refs.sqlite",
                dry_run=cfg.orders.dry_run, exchange_of=exchange_of,
            ).start()  # fmt: skip
        if self.md is not None:
            self.md.start()
        for session in self.sessions.values():
            session.start()

    def _own_view(self, account_id: str) -> dict[str, Any] | None:
        name = actor_name(self.prefix, "AccountShard", str(shard_of(account_id, self.n_shards)))
        try:
            shard = ray.get_actor(name)
            return ray.get(shard.accounts.remote([account_id]), timeout=10).get(account_id)
        except Exception as exc:  # a restarting shard: reconcile next time
            log.warning("reconcile %s: no view from %s: %s", account_id, name, exc)
            return None

    def _events(self, events: list[Any]) -> None:
        if events and self.correlator is not None:
            self.correlator.on_events.remote(events)

    def status(self) -> dict[str, Any]:
        return {
            "md": None if self.md is None else {**self.md.stats, "instruments": len(self.md.instruments)},
            "sessions": {a: s.view() for a, s in self.sessions.items()},
            "orders": None if self.router is None else {"dry_run": self.router.dry_run,
                                                         "would_send": len(self.router.would_send)},
            "account_bus": None if self.bus is None else dict(self.bus.stats),
        }  # fmt: skip

    def stop(self) -> None:
        for session in self.sessions.values():
            session.stop()
        if self.md is not None:
            self.md.stop()
        if self.router is not None:
            self.router.stop()
        self.push.close()
        if self.bus is not None:
            self.bus.stop()


@ray.remote(**{**ACTOR_OPTIONS, "max_task_retries": 0})
class BackofficeWatch:
    """The watched folder of back-office exports ([backoffice] watch_dir) as a placed actor."""

    def __init__(self, table: Any, inbound_endpoint: str) -> None:
        from gateways.backoffice.watch import BackofficeConfig, BackofficeWatcher, parse
        from gateways.ctp.spi import BusPush

        cfg = table if isinstance(table, BackofficeConfig) else parse(table)
        self.push = BusPush(inbound_endpoint)
        self.watcher = BackofficeWatcher(cfg.watch_dir, self.push, cfg.scan_s).start()

    def status(self) -> dict[str, Any]:
        return {**self.watcher.stats, "problems": list(self.watcher.problems)[-20:]}

    def stop(self) -> None:
        self.watcher.stop()
        self.push.close()


def start_edges(cfg: Any, prefix: str, correlator: Any, options: Any = None) -> list[Any]:
    """The supervisor's hook: the CTP ingest and the back-office watcher the config asks for.
    `options(role)`: the placement's Ray options of a role (its secrets, detached lifetime)."""
    extra = options or (lambda _role: {})
    edges = start_ctp(cfg, prefix, correlator, extra("CtpIngest"))
    table = getattr(cfg, "edges", {}).get("backoffice")
    watch_dir = getattr(table, "watch_dir", None) if table is not None else None
    if isinstance(table, dict):
        watch_dir = table.get("watch_dir")
    if watch_dir:
        edges.append(
            BackofficeWatch.options(
                name=actor_name(prefix, "BackofficeWatch"), **extra("BackofficeWatch")
            ).remote(table, cfg.accounts.inbound_endpoint)
        )
    return edges


def start_ctp(
    cfg: Any, prefix: str, correlator: Any, options: dict[str, Any] | None = None
) -> list[Any]:
    """The supervisor's hook: a CtpIngest actor when the config has a [ctp] table."""
    table = cfg.edges.get("ctp") if hasattr(cfg, "edges") else None
    if table is None:
        return []
    feeds = {f.name: f.endpoint for f in cfg.market.feeds}
    accounts = {"shards": cfg.accounts.shards, "endpoint": cfg.accounts.endpoint,
                "snapshot_endpoint": cfg.accounts.snapshot_endpoint,
                "inbound_endpoint": cfg.accounts.inbound_endpoint}  # fmt: skip
    orders = {"endpoint": cfg.orders.endpoint, "reports_endpoint": cfg.orders.reports_endpoint}
    opts = {"name": actor_name(prefix, "CtpIngest"), "get_if_exists": False, **(options or {})}
    actor = CtpIngest.options(**opts).remote(table, feeds, accounts, orders, prefix, correlator)
    return [actor]
