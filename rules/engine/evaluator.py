"""RuleEngine: the keyed rules of one place (an account shard, the hierarchy) over many keys.

Rules are grouped by their kind (threshold rules of one metric and operator form one bank), so
evaluation costs grow with the number of groups, not rules. `evaluate` takes the rows a caller
just re-marked and a metric source, and returns what fired; `replace` installs a new rule set
while a running caller keeps the state (arming, episodes, history) of every rule whose
definition did not change — hot reload neither re-fires a standing alert nor forgets one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from rules.engine.kinds import kind_of
from rules.engine.kinds.session import SessionGate
from rules.engine.spec import RuleSpec
from rules.engine.template import Fired, KeyedGroup, Source


class RuleEngine:
    def __init__(self, specs: Iterable[RuleSpec] = (), gate: SessionGate | None = None) -> None:
        self.gate = gate or SessionGate()
        self.groups: list[KeyedGroup] = []
        self.specs: dict[str, RuleSpec] = {}
        self.n = 0
        self.replace(specs)

    def replace(self, specs: Iterable[RuleSpec]) -> dict[str, list[str]]:
        """Install `specs`; returns the rule ids added, removed, changed and kept."""
        specs = list(specs)
        saved = {
            sid: (self.specs[sid], g.export(sid))
            for g in self.groups
            for sid in (s.id for s in g.specs)
        }
        buckets: dict[tuple[Any, ...], list[RuleSpec]] = defaultdict(list)
        for spec in specs:
            buckets[kind_of(spec.kind).group_key(spec)].append(spec)
        groups = [kind_of(members[0].kind).build(members) for members in buckets.values()]
        report: dict[str, list[str]] = {"added": [], "removed": [], "changed": [], "kept": []}
        for g in groups:
            g.resize(self.n)
            for spec in g.specs:
                old = saved.get(spec.id)
                if old is None:
                    report["added"].append(spec.id)
                elif old[0] == spec:
                    g.restore(spec.id, old[1])
                    report["kept"].append(spec.id)
                else:
                    report["changed"].append(spec.id)
        report["removed"] = sorted(set(saved) - {s.id for s in specs})
        self.groups = groups
        self.specs = {s.id: s for s in specs}
        return report

    def resize(self, n: int) -> None:
        if n > self.n:
            self.n = n
            for g in self.groups:
                g.resize(n)

    def active(self, group: KeyedGroup, ts: float, scope: str | None) -> bool:
        return (scope is None or group.scope == scope) and self.gate.active(group.sessions, ts)

    def edge(self, group: KeyedGroup, prev_ts: float | None, ts: float) -> bool:
        """Whether every key must be evaluated at `ts`, not just the re-marked ones: the
        first look at a group, a session of its opening since `prev_ts`, or a new baseline
        window. Values that did not move can then cross (nothing else can make them)."""
        if prev_ts is None or group.rolls(prev_ts, ts):
            return True
        sessions = group.sessions
        return (
            bool(sessions)
            and self.gate.active(sessions, ts)
            and not self.gate.active(sessions, prev_ts)
        )

    def evaluate(
        self, source: Source, rows: np.ndarray, ts: float, scope: str | None = None,
        only: set[str] | None = None, universe: Callable[[], np.ndarray] | None = None,
    ) -> list[Fired]:  # fmt: skip
        """Evaluate the rules (of `scope`, or those in `only`) on `rows` at time `ts`; a group
        at an edge (see `edge`) is evaluated on `universe()` (every live key) instead."""
        out: list[Fired] = []
        if rows.size:
            self.resize(int(rows.max()) + 1)
        everyone: np.ndarray | None = None
        for g in self.groups:
            if only is not None and not any(s.id in only for s in g.specs):
                continue
            if scope is not None and g.scope != scope:
                continue
            prev, g.last_ts = g.last_ts, ts
            r = rows
            if universe is not None and self.edge(g, prev, ts):
                everyone = universe() if everyone is None else everyone
                r = everyone
            out.extend(self.evaluate_group(g, source, r, ts))
        return out

    def evaluate_group(
        self, g: KeyedGroup, source: Source, rows: np.ndarray, ts: float
    ) -> list[Fired]:
        if rows.size == 0 or not self.gate.active(g.sessions, ts):
            return []
        self.resize(int(rows.max()) + 1)
        return g.evaluate(source, rows, ts)

    def observe(self, source: Source, rows: np.ndarray, ts: float) -> None:
        if rows.size:
            self.resize(int(rows.max()) + 1)
            for g in self.groups:
                g.observe(source, rows, ts)

    def on_activity(self, kind: str, rows: np.ndarray, ts: float) -> None:
        for g in self.groups:
            g.on_activity(kind, rows, ts)

    def on_amount(self, kind: str, rows: np.ndarray, amounts: np.ndarray, ts: float) -> None:
        for g in self.groups:
            g.on_amount(kind, rows, amounts, ts)

    def adaptive_state(self, names: Sequence[str]) -> dict[str, Any]:
        """Plain data (JSON-safe): the learned baselines of the adaptive groups by rule id,
        keyed by key name (`names[row]`: account ids), with each rule's fingerprint (a changed
        rule starts a new baseline)."""
        return {
            g.specs[0].id: {"fingerprint": g.specs[0].fingerprint(), "state": g.state(names)}
            for g in self.groups
            if hasattr(g, "state")
        }

    def restore_adaptive(self, snapshot: Mapping[str, Any], rows: Mapping[str, int]) -> list[str]:
        """Baselines of a snapshot (`adaptive_state`) for rules whose definition did not
        change: for the keys in `rows` (name → row) now, for the others when `adopt` names
        them. Returns the rule ids restored."""
        got = []
        for g in self.groups:
            saved = snapshot.get(g.specs[0].id)
            if (hasattr(g, "restore_state") and isinstance(saved, Mapping)
                    and saved.get("fingerprint") == g.specs[0].fingerprint()):  # fmt: skip
                g.restore_state(saved["state"], rows)
                got.append(g.specs[0].id)
        return got

    def adopt(self, rows: Mapping[str, int]) -> None:
        """Keys that appeared (name → row) take their restored baselines, if any."""
        for g in self.groups:
            if getattr(g, "pending", None):
                g.adopt(rows)

    def __len__(self) -> int:
        return len(self.specs)
