"""Supervisor: places the actors the config asks for, wires them, and takes them down.

Actors are handed their peers by name (actors.peers.Peer), never by handle: an actor handle in
the constructor arguments of an actor with `max_restarts` makes Ray warn that its restart may
fail (ray-project/ray#53727), and a name is all a restarted constructor needs to find its peer
again. The journal still comes first (the rule set is journaled before any actor starts), then
the actors that write to it, then those that send to them. Everything a restarted actor needs is
in its constructor arguments (Ray re-runs them on restart), so restarts need no re-wiring. The console
(app/console, the Serve application "fengkong-console") comes last, once every actor is up: it
finds them by name, and it is where the Notifier's links and Twilio's callbacks go.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import ray

from actors import rules_push
from actors.account_shard import AccountShard, AccountShardSettings
from actors.audit_log import AuditLog, AuditLogSettings
from actors.common import actor_name
from actors.context import Context
from actors.correlator import Correlator
from actors.ctp_ingest import start_edges
from actors.execution.settings import executor_settings
from actors.executor import Executor
from actors.exposure_book import ExposureBook, ExposureBookSettings
from actors.hierarchy import Hierarchy, HierarchySettings
from actors.market_feed import MarketFeed, MarketFeedSettings
from actors.notifier import Notifier
from actors.peers import Peer
from infra.approval_keys import seal_key
from infra.cluster import Placement
from infra.config import Config

BOOK_PRICE_INTERVAL_S = 1.0  # books need no 50 ms cadence


@dataclass
class System:
    prefix: str
    audit: Any
    notifier: Any
    executor: Any
    correlator: Any
    shards: list[Any]
    books: dict[str, Any]
    feeds: list[Any]
    hierarchy: Any = None
    ruleset: Any = None  # the rule set it started with (rules.engine.spec.RuleSet)
    edges: list[Any] = dataclasses.field(default_factory=list)  # e.g. CtpIngest ([ctp])
    console_url: str = ""  # the console's public URL ("" when [console] enabled = false)

    def all(self) -> list[Any]:
        return [
            self.audit,
            self.notifier,
            self.executor,
            self.correlator,
            *self.shards,
            *self.books.values(),
            *self.feeds,
            *([self.hierarchy] if self.hierarchy is not None else []),
            *self.edges,
        ]


_PLACEMENT: list[Placement | None] = [None]  # the placement of the start_system in progress


def _named(cls: Any, prefix: str, role: str, key: str = "") -> Any:
    placement = _PLACEMENT[0]
    extra = placement.options(role) if placement is not None else {}
    return cls.options(name=actor_name(prefix, role, key), get_if_exists=False, **extra)


def _peer(prefix: str, role: str, key: str = "") -> Peer:
    """What a constructor gets instead of a handle (see the module's docstring)."""
    return Peer.of(actor_name(prefix, role, key))


def channel_dicts(cfg: Config) -> list[dict[str, Any]]:
    return [{"name": c.name, "type": c.type, **c.settings} for c in cfg.channels]


def start_system(
    cfg: Config,
    prefix: str = "fengkong.",
    commodities: list[str] | None = None,
    placement: Placement | None = None,
) -> System:
    """Create every actor of the risk loop; returns their handles once all are up.

    `placement` (infra.cluster.Placement) adds CPUs, resources, SPREAD and, for `fengkong run`,
    detached lifetimes; without it actors keep their class defaults (demo, tests)."""
    _PLACEMENT[0] = placement
    try:
        system = _start(cfg, prefix, commodities)
    finally:
        _PLACEMENT[0] = None
    if cfg.console.enabled:
        from app.console.serve import deploy_console  # Serve only where a console is wanted

        try:
            system.console_url = deploy_console(
                cfg, prefix, commodities=list(cfg.books.commodities) or list(system.books),
                env=placement.secrets.get("Console") if placement is not None else None,
            )  # fmt: skip
        except BaseException:
            stop_system(system)
            raise
    return system


def _start(cfg: Config, prefix: str, commodities: list[str] | None) -> System:
    context = Context.build(cfg)  # one contract table, calendar and clock for every actor
    table = context.contracts
    # One seal key per deployment (configured, else drawn now): the Executor seals decision
    # records with it and the AuditLog refuses any without (issue 13 item 5).
    # A key configured by variable reaches the Executor only (infra.cluster.role_secrets).
    own = _PLACEMENT[0].secrets.get("Executor", {}) if _PLACEMENT[0] is not None else {}
    sealing = own.get(cfg.approval.seal_key_env) or seal_key(cfg.approval, draw=True) or ""
    audit = _named(AuditLog, prefix, "AuditLog").remote(
        AuditLogSettings(
            cfg.audit.path,
            cfg.audit.batch_ms,
            seal_key=sealing,
            busy_timeout_s=cfg.audit.busy_timeout_s,
        )  # fmt: skip
    )
    ruleset, rules = rules_push.startup(cfg, audit)  # journaled before any actor uses it
    console_url = cfg.console.url if cfg.console.enabled else ""
    to_audit = _peer(prefix, "AuditLog")
    notifier = _named(Notifier, prefix, "Notifier").remote(
        channel_dicts(cfg), to_audit, cfg.notifier, console_url
    )
    to_notifier = _peer(prefix, "Notifier")
    executor = _named(Executor, prefix, "Executor").remote(
        executor_settings(cfg, prefix, seal_key=sealing), to_audit, notifier=to_notifier
    )
    correlator = _named(Correlator, prefix, "Correlator").remote(
        context=context,
        notifier=to_notifier,
        executor=_peer(prefix, "Executor"),
        audit=to_audit,
        rules=rules,
    )
    to_correlator = _peer(prefix, "Correlator")
    wanted = list(cfg.books.commodities) or list(commodities or [])
    by_commodity: dict[str, list[str]] = {}
    for product in table.products():
        spec = table.spec(product)
        if spec.commodity in wanted:
            by_commodity.setdefault(spec.commodity, []).append(product)
    books = {
        c: _named(ExposureBook, prefix, "ExposureBook", c).remote(
            ExposureBookSettings(
                c,
                tuple(products),
                cfg.books,
                all_commodities=tuple(by_commodity),
                report_unrouted=i == 0,  # one book reports input rows that belong to no book
            ),
            context=context,
            correlator=to_correlator,
            audit=to_audit,
            rules=rules,
        )
        for i, (c, products) in enumerate(by_commodity.items())
    }
    to_books = {c: _peer(prefix, "ExposureBook", c) for c in books}
    hierarchy = _named(Hierarchy, prefix, "Hierarchy").remote(
        HierarchySettings(), context=context, rules=rules, correlator=to_correlator, audit=to_audit
    )
    shards = [
        _named(AccountShard, prefix, "AccountShard", str(k)).remote(
            AccountShardSettings(
                k,
                cfg.accounts.shards,
                cfg.accounts.endpoint,
                cfg.accounts.snapshot_endpoint,
                margin_markup=cfg.accounts.margin_markup,
                flush_ms=cfg.accounts.flush_ms,
                policies=tuple(dict(p) for p in cfg.accounts.policies),
            ),
            context=context,
            rules=rules,
            correlator=to_correlator,
            books=to_books,
            audit=to_audit,
            hierarchy=_peer(prefix, "Hierarchy"),
        )
        for k in range(cfg.accounts.shards)
    ]
    subscribers = [
        (_peer(prefix, "AccountShard", str(k)), "on_prices", 0.0) for k in range(len(shards))
    ]
    subscribers += [(b, "on_prices", BOOK_PRICE_INTERVAL_S) for b in to_books.values()]
    by_feed: dict[str, Any] = {}  # primaries first: a backup is handed its primary
    for f in sorted(cfg.market.feeds, key=lambda f: f.role == "backup"):
        by_feed[f.name] = _named(MarketFeed, prefix, "MarketFeed", f.name).remote(
            MarketFeedSettings(
                f.name,
                f.endpoint,
                cfg.market.flush_ms,
                role=f.role,
                market=cfg.market,
            ),
            context=context,
            subscribers=subscribers,
            correlator=to_correlator,
            rules=rules,
            primary=_peer(prefix, "MarketFeed", f.primary) if f.primary in by_feed else None,
            audit=to_audit,  # learned market baselines (actors/feed_adaptive.py)
        )
    feeds = list(by_feed.values())
    system = System(prefix, audit, notifier, executor, correlator, shards, books, feeds, hierarchy)
    system.ruleset = ruleset
    placement = _PLACEMENT[0]
    options = placement.options if placement is not None else None
    # [ctp], [backoffice] when configured; CtpIngest gets only its own secrets (placement)
    system.edges = start_edges(cfg, prefix, to_correlator, options)
    # Wait until every actor's constructor has run (sockets connected, threads started).
    ray.get([a.__ray_ready__.remote() for a in system.all()])
    return system


def stop_system(system: System) -> None:
    """Flush the journal and kill every actor (no restart), sources first: a feed still pushing
    prices to a shard that is already gone would only log failed calls. The console goes
    first: its pages would only answer that the actors are gone."""
    if system.console_url:
        from app.console.serve import stop_console

        stop_console()
    for edge in system.edges:  # CTP sessions log out and release their APIs
        try:
            ray.get(edge.stop.remote(), timeout=15)
        except Exception:
            pass
    for feed in system.feeds:
        try:
            ray.kill(feed, no_restart=True)
        except Exception:
            pass
    try:
        ray.get(system.audit.flush.remote(), timeout=10)
    except Exception:  # a dead journal actor has nothing left to flush
        pass
    for actor in system.all():
        if any(actor is f for f in system.feeds):
            continue
        try:
            ray.kill(actor, no_restart=True)
        except Exception:
            pass


def adopt_system(cfg: Config, prefix: str, names: list[str]) -> System | None:
    """The running system's handles found by name (a restarted supervisor keeps supervising
    what it finds); None when a singleton of the loop is missing (then it is rebuilt)."""

    def get(role: str, key: str = "") -> Any:
        return ray.get_actor(actor_name(prefix, role, key))

    try:
        system = System(
            prefix, get("AuditLog"), get("Notifier"), get("Executor"), get("Correlator"),
            [get("AccountShard", str(k)) for k in range(cfg.accounts.shards)],
            {n.removeprefix(f"{prefix}ExposureBook."): ray.get_actor(n)
             for n in names if n.startswith(f"{prefix}ExposureBook.")},
            [get("MarketFeed", f.name) for f in cfg.market.feeds],
        )  # fmt: skip
    except ValueError:
        return None
    try:
        system.hierarchy = get("Hierarchy")
    except ValueError:
        pass
    system.edges = [ray.get_actor(n) for n in names if n in (
        actor_name(prefix, "CtpIngest"), actor_name(prefix, "BackofficeWatch"))]  # fmt: skip
    return system
