"""Rule sets onto a running cluster: the start-up set, and `fengkong rules apply`.

Start-up: the config's rule set (`rules_files` plus the rules of its old spellings, see
infra.rulesets.for_config) is journaled as `ruleset.applied` before any actor starts, then
handed to every actor that evaluates rules — one bundle, the same shape for all of them.

Apply (hot reload): the file is loaded and validated in the caller's process, and every
actor-side object is built once there (rule engines, composite matcher, market rule set,
book limits, fund flows) — a bad file raises before anything is journaled or pushed, so it
changes nothing. The applied rules go on the config's base (its market rules, book limits and
fund flows, which a reload keeps). Then the change is journaled durably (who, when, version,
diff: the outbox rule: on disk before it acts), then pushed with `set_rules(bundle)`, the same
bundle to every actor: Correlator first (composite rules ready for the events the new rules
raise), Hierarchy, feeds, books, and the shards last. Each actor swaps under its own lock
between two evaluations, so no event is lost or evaluated twice; an actor that was down reads
the journal's latest set when it restarts.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import ray

from actors.common import actor_name
from infra import rulesets
from infra.config import Config
from infra.holidays import load_holidays
from infra.specs import load_contract_table
from rules.engine.evaluator import RuleEngine
from rules.engine.kinds.composite import CompositeMatcher
from rules.engine.kinds.market_set import MarketRuleSet
from rules.engine.spec import RuleSet, diff
from rules.sessions import SessionCalendar

PUSH_TIMEOUT_S = 60.0


def clock_shift(cfg: Config) -> float:
    start = cfg.market.session_clock_start
    return datetime.fromisoformat(start).timestamp() - time.time() if start else 0.0


def calendar(cfg: Config) -> SessionCalendar:
    table = load_contract_table(cfg.contracts_overrides)
    holidays = load_holidays(cfg.market.holidays_file) if cfg.market.holidays_file else ()
    return SessionCalendar.from_table(table, holidays)


def bundle(ruleset: RuleSet, cfg: Config) -> dict[str, Any]:
    """What actors receive: the set plus deployment context (not part of its version)."""
    return {**ruleset.to_bundle(), "context": {"clock_shift_s": clock_shift(cfg), "recover": True}}


def startup(cfg: Config, audit: Any, by: str = "") -> tuple[RuleSet, dict[str, Any]]:
    """Load the config's rule set and journal it (durably) before the actors start."""
    ruleset = rulesets.for_config(cfg)
    validate(ruleset, cfg)
    if audit is not None:
        previous = rulesets.last_applied(
            ray.get(audit.query.remote(kind=rulesets.JOURNAL_KIND), timeout=PUSH_TIMEOUT_S)
        )
        record = rulesets.applied_record(
            ruleset, previous, by or f"startup ({cfg.source})", "startup"
        )
        ray.get(audit.durable.remote([record]), timeout=PUSH_TIMEOUT_S)
    return ruleset, bundle(ruleset, cfg)


def validate(ruleset: RuleSet, cfg: Config) -> None:
    """Build every actor-side object of the set once (ValueError: nothing is pushed)."""
    for place in ("account", "transfers", "hierarchy", "books"):
        RuleEngine(rulesets.placed(ruleset, place))
    CompositeMatcher(rulesets.placed(ruleset, "correlator"))
    MarketRuleSet(rulesets.placed(ruleset, "market"), cfg.market.stats.vol_windows_s)


@dataclass
class RuleActors:
    audit: Any
    correlator: Any
    hierarchy: Any = None
    shards: list[Any] = field(default_factory=list)
    feeds: list[Any] = field(default_factory=list)
    books: list[Any] = field(default_factory=list)

    @classmethod
    def of_system(cls, system: Any) -> RuleActors:
        return cls(system.audit, system.correlator, system.hierarchy, list(system.shards),
                   list(system.feeds), list(system.books.values()))  # fmt: skip

    @classmethod
    def by_name(cls, prefix: str) -> RuleActors:
        """Handles of a running system's actors, found by their names in the namespace."""
        names = sorted(n if isinstance(n, str) else n["name"] for n in ray.util.list_named_actors())

        def role(r: str) -> list[Any]:
            base = actor_name(prefix, r)
            return [ray.get_actor(n) for n in names if n == base or n.startswith(base + ".")]

        def one(r: str) -> Any:
            found = role(r)
            return found[0] if found else None

        return cls(one("AuditLog"), one("Correlator"), one("Hierarchy"), role("AccountShard"),
                   role("MarketFeed"), role("ExposureBook"))  # fmt: skip


def apply(actors: RuleActors, ruleset: RuleSet, cfg: Config, by: str) -> dict[str, Any]:
    """Journal and push a validated rule set, on the config's base (its market rules, book
    limits and fund flows, which a reload keeps); returns the diff and every actor's report."""
    ruleset = dataclasses.replace(ruleset, base=rulesets.config_base(cfg))
    validate(ruleset, cfg)
    current = RuleSet.from_bundle(
        ray.get(actors.correlator.ruleset_bundle.remote(), timeout=PUSH_TIMEOUT_S)
    )
    record = rulesets.applied_record(ruleset, current, by, "apply")
    ray.get(actors.audit.durable.remote([record]), timeout=PUSH_TIMEOUT_S)
    payload = bundle(ruleset, cfg)  # one shape for every actor: each takes its place's rules
    hierarchy = [actors.hierarchy] if actors.hierarchy is not None else []
    targets = [actors.correlator, *hierarchy, *actors.feeds, *actors.books, *actors.shards]
    calls = [a.set_rules.remote(payload) for a in targets]
    reports, errors = [], []
    for ref in calls:
        try:
            reports.append(ray.get(ref, timeout=PUSH_TIMEOUT_S))
        except Exception as exc:  # that actor reads the journal's set when it restarts
            errors.append(f"{type(exc).__name__}: {exc}"[:300])
    return {"version": ruleset.version, "by": by, "diff": diff(current, ruleset),
            "actors": reports, "errors": errors}  # fmt: skip
