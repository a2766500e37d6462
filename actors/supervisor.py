"""Supervisor: places the actors the config asks for, wires them, and takes them down.

Order matters only for handles passed at construction: the journal first, then the actors that
write to it, then those that send to them. Everything a restarted actor needs is in its
constructor arguments (Ray re-runs them on restart), so restarts need no re-wiring.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import ray

from actors import rules_push
from actors.account_shard import AccountShard
from actors.audit_log import AuditLog
from actors.common import actor_name
from actors.correlator import Correlator
from actors.execution.settings import executor_settings
from actors.executor import Executor
from actors.exposure_book import ExposureBook
from actors.hierarchy import Hierarchy
from actors.market_feed import MarketFeed
from actors.notifier import Notifier
from infra.config import Config
from infra.specs import load_contract_table

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
        ]


def _named(cls: Any, prefix: str, role: str, key: str = "") -> Any:
    return cls.options(name=actor_name(prefix, role, key), get_if_exists=False)


def channel_dicts(cfg: Config) -> list[dict[str, Any]]:
    return [{"name": c.name, "type": c.type, **c.settings} for c in cfg.channels]


def start_system(
    cfg: Config, prefix: str = "fengkong.", commodities: list[str] | None = None
) -> System:
    """Create every actor of the risk loop; returns their handles once all are up."""
    table = load_contract_table(cfg.contracts_overrides)
    overrides = tuple(cfg.contracts_overrides)
    audit = _named(AuditLog, prefix, "AuditLog").remote(cfg.audit.path, cfg.audit.batch_ms)
    ruleset, rules = rules_push.startup(cfg, audit)  # journaled before any actor uses it
    notifier = _named(Notifier, prefix, "Notifier").remote(channel_dicts(cfg), audit, cfg.notifier)
    executor = _named(Executor, prefix, "Executor").remote(
        executor_settings(cfg, prefix), audit, notifier=notifier
    )
    correlator = _named(Correlator, prefix, "Correlator").remote(notifier, executor, audit, rules)
    wanted = list(cfg.books.commodities) or list(commodities or [])
    by_commodity: dict[str, list[str]] = {}
    for product in table.products():
        spec = table.spec(product)
        if spec.commodity in wanted:
            by_commodity.setdefault(spec.commodity, []).append(product)
    books = {
        c: _named(ExposureBook, prefix, "ExposureBook", c).remote(
            c,
            products,
            correlator=correlator,
            audit=audit,
            settings=rules_push.books_config(cfg, ruleset),
            all_commodities=tuple(by_commodity),
            report_unrouted=i == 0,  # one book reports input rows that belong to no book
            contracts_overrides=overrides,
            holidays_file=cfg.market.holidays_file,
        )
        for i, (c, products) in enumerate(by_commodity.items())
    }
    hierarchy = _named(Hierarchy, prefix, "Hierarchy").remote(
        rules, correlator, audit=audit, calendar=rules_push.calendar(cfg)
    )
    shards = [
        _named(AccountShard, prefix, "AccountShard", str(k)).remote(
            k,
            cfg.accounts.shards,
            cfg.accounts.endpoint,
            cfg.accounts.snapshot_endpoint,
            rules,
            correlator,
            books,
            audit,
            cfg.accounts.margin_markup,
            cfg.accounts.flush_ms,
            overrides,
            [dict(p) for p in cfg.accounts.policies],
            dataclasses.asdict(cfg.accounts.fund_flow),
            hierarchy,
        )
        for k in range(cfg.accounts.shards)
    ]
    subscribers = [(s, "on_prices", 0.0) for s in shards]
    subscribers += [(b, "on_prices", BOOK_PRICE_INTERVAL_S) for b in books.values()]
    by_feed: dict[str, Any] = {}  # primaries first: a backup is handed its primary
    for f in sorted(cfg.market.feeds, key=lambda f: f.role == "backup"):
        by_feed[f.name] = _named(MarketFeed, prefix, "MarketFeed", f.name).remote(
            f.name,
            f.endpoint,
            cfg.market.flush_ms,
            subscribers,
            overrides,
            correlator=correlator,
            market=rules_push.market_config(cfg, ruleset),
            role=f.role,
            primary=by_feed.get(f.primary),
        )
    feeds = list(by_feed.values())
    system = System(prefix, audit, notifier, executor, correlator, shards, books, feeds, hierarchy)
    system.ruleset = ruleset
    # Wait until every actor's constructor has run (sockets connected, threads started).
    ray.get([a.__ray_ready__.remote() for a in system.all()])
    return system


def stop_system(system: System) -> None:
    """Flush the journal and kill every actor (no restart), sources first: a feed still pushing
    prices to a shard that is already gone would only log failed calls."""
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
