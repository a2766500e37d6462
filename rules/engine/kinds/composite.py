"""composite: several events within a window, across dimensions and keys, joined on a key.

    [[rules]]
    id = "composite.risk_and_jump"
    kind = "composite"
    severity = "critical"
    within_s = 60
    join = "holds"                      # key | holds | commodity
    when = [["dimension=account", "rule=~account\\.risk_degree.*"],
            ["dimension=market", "kind=~market\\.(jump|volatility)"]]

Each `when` entry is a list of label matchers (rules.engine.matchers) an event must satisfy.
The rule fires when every condition has an event within `within_s` of the others and their
join values meet:

- key: the events' keys are equal (exposure over limit and basis widening on one commodity);
- holds: an account event's held instruments (its `instruments` attribute) contain a market
  event's contract (risk degree above 80% and a jump on a contract the account holds);
- commodity: the commodity (or product) of each side: a book's commodity, a contract's
  product, the products an account holds.

The first condition names the subject: the composite event is about its key (an account), one
per subject, so a jump on rb makes one critical event for every risky account holding rb.
A combination of component events fires once (its identity is the components' rule, key and
episode), so a retried or repeated component never fires it twice; a new episode of a component
is a new combination. Partial matches expire with the window (event time, so a backtest matches
the same way). Pure: the Correlator and the backtest run it.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from typing import Any

from rules.contracts import product_of
from rules.engine.matchers import Matcher, labels_of, match_all, parse_matchers
from rules.engine.spec import RuleSpec, check_common
from rules.engine.template import Param, RuleKind
from rules.model import RiskEvent, stable_id

JOINS = ("key", "holds", "commodity")
FIRED_MEMORY = 100_000


class CompositeKind(RuleKind):
    name = "composite"
    scopes = ("any", "account", "commodity", "contract")
    needs_metric = False
    params = (
        Param("when", list, doc="conditions: a list of matcher lists, two or more"),
        Param("within_s", (int, float), 60.0, "the events must lie within this many seconds"),
        Param("join", str, "key", "how the events' keys meet", JOINS),
    )

    def place(self, spec: RuleSpec) -> str:
        return "correlator"

    def check(self, spec: RuleSpec, metrics: Any) -> None:
        check_common(spec)
        when = spec.param("when")
        if not isinstance(when, list) or len(when) < 2:
            raise ValueError("when: needs at least two conditions (lists of matchers)")
        for i, cond in enumerate(when):
            if not isinstance(cond, list) or not cond:
                raise ValueError(f"when[{i}]: a condition is a non-empty list of matchers")
            try:
                parse_matchers(cond)
            except ValueError as exc:
                raise ValueError(f"when[{i}]: {exc}") from None
        if float(spec.param("within_s")) <= 0:
            raise ValueError("within_s: must be positive")
        if spec.sessions:
            raise ValueError("sessions: composite rules follow their components' sessions")


def event_labels(ev: RiskEvent) -> dict[str, str]:
    return labels_of(
        ev.rule_id, ev.key, ev.severity, ev.dimension, {**ev.attributes, "kind": ev.kind}
    )


def join_values(ev: RiskEvent, join: str) -> set[str]:
    attrs = ev.attributes
    if join == "key":
        return {ev.key}
    if join == "holds":
        held = attrs.get("instruments")
        return set(held) if isinstance(held, (list, tuple)) else {ev.key}
    for name in ("commodity", "product"):
        if isinstance(attrs.get(name), str) and attrs[name]:
            return {attrs[name]}
    held = attrs.get("instruments")
    if isinstance(held, (list, tuple)) and held:
        return {_product(i) for i in held}
    return {_product(ev.key)}


def _product(name: str) -> str:
    try:
        return product_of(name)
    except ValueError:
        return name


class _Rule:
    def __init__(self, spec: RuleSpec) -> None:
        self.spec = spec
        self.conditions: list[tuple[Matcher, ...]] = [parse_matchers(c) for c in spec.param("when")]
        self.within = float(spec.param("within_s", 60.0))
        self.join = spec.param("join", "key")
        # per condition: join value -> events (oldest first)
        self.store: list[dict[str, collections.deque[RiskEvent]]] = [{} for _ in self.conditions]
        self.fired: collections.OrderedDict[tuple[Any, ...], None] = collections.OrderedDict()


class CompositeMatcher:
    """Partial matches of every composite rule; `on_events` returns the composite events."""

    def __init__(self, specs: Iterable[RuleSpec] = ()) -> None:
        self.rules: dict[str, _Rule] = {}
        self.replace(specs)

    def replace(self, specs: Iterable[RuleSpec]) -> None:
        """New rule set: rules whose definition did not change keep their partial matches."""
        new: dict[str, _Rule] = {}
        for spec in specs:
            old = self.rules.get(spec.id)
            new[spec.id] = old if old is not None and old.spec == spec else _Rule(spec)
        self.rules = new

    def on_events(self, events: Iterable[RiskEvent]) -> list[RiskEvent]:
        out: list[RiskEvent] = []
        for ev in events:
            if ev.dimension == "composite" or not self.rules:
                continue
            labels = event_labels(ev)
            for rule in self.rules.values():
                for i, cond in enumerate(rule.conditions):
                    if match_all(cond, labels):
                        out.extend(self._add(rule, i, ev))
        return out

    def expire(self, now: float) -> None:
        """Drop partial matches older than their window (a timer calls this)."""
        for rule in self.rules.values():
            for store in rule.store:
                for v in list(store):
                    q = store[v]
                    while q and q[0].ts < now - rule.within:
                        q.popleft()
                    if not q:
                        del store[v]

    def pending(self) -> int:
        return sum(len(q) for r in self.rules.values() for s in r.store for q in s.values())

    def _add(self, rule: _Rule, i: int, ev: RiskEvent) -> list[RiskEvent]:
        out: list[RiskEvent] = []
        for v in sorted(join_values(ev, rule.join)):
            q = rule.store[i].setdefault(v, collections.deque())
            q.append(ev)
            while q and q[0].ts < ev.ts - rule.within:
                q.popleft()
            others: list[list[RiskEvent]] = []
            for j, store in enumerate(rule.store):
                if j == i:
                    others.append([ev])
                    continue
                near = [x for x in store.get(v, ()) if abs(x.ts - ev.ts) <= rule.within]
                if not near:
                    break
                others.append(near)
            else:
                out.extend(self._fire(rule, v, others))
        return out

    def _fire(self, rule: _Rule, v: str, candidates: list[list[RiskEvent]]) -> list[RiskEvent]:
        latest_per_subject: dict[str, RiskEvent] = {}
        for s in candidates[0]:
            latest_per_subject[s.key] = s
        rest = [max(c, key=lambda e: e.ts) for c in candidates[1:]]
        out = []
        for key in sorted(latest_per_subject):
            subject = latest_per_subject[key]
            parts = [subject, *rest]
            combo = tuple(sorted((p.rule_id, p.key, p.episode) for p in parts))
            if combo in rule.fired:
                continue
            rule.fired[combo] = None
            if len(rule.fired) > FIRED_MEMORY:
                rule.fired.popitem(last=False)
            out.append(composite_event(rule.spec, subject, parts, v, combo))
        return out


def composite_event(
    spec: RuleSpec, subject: RiskEvent, parts: list[RiskEvent], joined: str, combo: tuple[Any, ...]
) -> RiskEvent:
    completing = max(parts, key=lambda p: p.ts)
    attrs: dict[str, Any] = {
        "join": rule_join(spec),
        "joined_on": joined,
        "subject_dimension": subject.dimension,
        "description": spec.description,
        "components": [
            {"rule_id": p.rule_id, "key": p.key, "kind": p.kind, "dimension": p.dimension,
             "value": p.value, "ts": p.ts, "episode": p.episode}
            for p in parts
        ],
    }  # fmt: skip
    for name in ("group_path", "instruments", "shard"):
        if name in subject.attributes:
            attrs[name] = subject.attributes[name]
    return RiskEvent(
        rule_id=spec.id,
        kind="composite",
        key=subject.key,
        severity=spec.severity,
        value=subject.value,
        threshold=subject.threshold,
        ts=completing.ts,
        ingress_ts=completing.ingress_ts,
        episode=int(stable_id(*combo, length=12), 16),
        dimension="composite",
        attributes=attrs,
        action=dict(spec.action) if spec.action and subject.dimension == "account" else None,
    )


def rule_join(spec: RuleSpec) -> str:
    return str(spec.param("join", "key"))
