"""Hierarchy actor: cluster-wide roll-ups (group → subsidiary → unit, and strategies) and the
rules scoped to them.

Each AccountShard pushes its per-node sums about once a second; the latest push of every shard
is kept (so a restarted shard replaces, never doubles, its part), merged into node figures, and
the node-scoped threshold rules are evaluated with hysteresis like the account rules.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import ray

from actors.common import ACTOR_OPTIONS, BoundedSender
from actors.context import Context
from actors.rule_host import bundle_of, start_ruleset
from actors.shell import ActorShell
from rules.engine.evaluator import RuleEngine
from rules.engine.kinds import kind_of
from rules.engine.kinds.session import SessionGate
from rules.engine.metrics import NODE_METRICS
from rules.engine.spec import NODE_SCOPES, RuleSet
from rules.hierarchy import level_of, merge
from rules.model import RiskEvent

__all__ = ["Hierarchy", "NODE_METRICS", "NODE_SCOPES"]


@dataclass(frozen=True)
class HierarchySettings:
    every_s: float = 1.0  # how often the roll-ups are merged and the node rules evaluated


@ray.remote(**ACTOR_OPTIONS)
class Hierarchy(ActorShell):
    def __init__(
        self,
        settings: HierarchySettings = HierarchySettings(),
        *,
        context: Context | None = None,
        rules: list[dict[str, Any]] | dict[str, Any] | None = None,
        correlator: Any = None,
        audit: Any = None,
    ) -> None:
        super().__init__("Hierarchy", context)
        self.settings = settings
        ruleset, rule_context = start_ruleset(rules, audit)
        shift = float(rule_context.get("clock_shift_s", 0.0))
        self.engine = RuleEngine((), SessionGate(self.context.calendar, shift))
        self.ruleset = RuleSet()
        self._install(ruleset)
        self.node_order: list[str] = []  # stable row per node for the hysteresis state
        self.correlator = correlator
        self.parts: dict[int, dict[str, Any]] = {}
        self.received: dict[int, float] = {}
        self.nodes: dict[str, dict[str, Any]] = {}
        self.exposure: dict[str, dict[str, float]] = {}
        self._sender = BoundedSender(1)
        self._lock = threading.Lock()
        self.every(settings.every_s, self.evaluate, "rollup")

    def on_rollup(self, part: dict[str, Any]) -> None:
        with self._lock:
            self.parts[int(part["shard"])] = part
            self.received[int(part["shard"])] = time.time()
            self.counts["rollups"] += 1

    def _install(self, ruleset: RuleSet) -> dict[str, Any]:
        report = self.engine.replace(
            [r for r in ruleset.rules if kind_of(r.kind).place(r) == "hierarchy"]
        )
        self.ruleset = ruleset
        return report

    def set_rules(self, bundle: dict[str, Any]) -> dict[str, Any]:
        """Hot reload: node rules that did not change keep their state; the next roll-up
        (within `every_s`) evaluates the new ones on every node."""
        ruleset = bundle_of(bundle)
        with self._lock:
            report = self._install(ruleset)
        self.counts["rule_reloads"] += 1
        return {"actor": "Hierarchy", "version": ruleset.version, **report}

    def rules_info(self) -> dict[str, Any]:
        return {
            "actor": "Hierarchy",
            "version": self.ruleset.version,
            "rules": sorted(self.engine.specs),
        }

    def evaluate(self) -> int:
        with self._lock:
            parts = list(self.parts.values())
            oldest = min(self.received.values(), default=time.time())
        nodes = merge(p["nodes"] for p in parts)
        exposure: dict[str, dict[str, float]] = {}
        for p in parts:
            for node, by_commodity in p["exposure"].items():
                acc = exposure.setdefault(node, {})
                for commodity, units in by_commodity.items():
                    acc[commodity] = acc.get(commodity, 0.0) + units
        for name in nodes:
            if name not in self.node_order:
                self.node_order.append(name)
        events = []
        now = time.time()

        def source(metric: str, rows: np.ndarray) -> np.ndarray:
            return np.array([float(nodes[self.node_order[i]].get(metric, np.nan)) for i in rows])

        with self._lock:
            self.engine.resize(len(self.node_order))
            for scope in NODE_SCOPES:
                rows = np.array(
                    [
                        i
                        for i, n in enumerate(self.node_order)
                        if n in nodes and level_of(n) == scope
                    ],
                    dtype=np.int64,
                )
                for fired in self.engine.evaluate(source, rows, now, scope=scope):
                    spec = fired.spec
                    for row, value, episode in zip(
                        fired.rows.tolist(),
                        fired.values.tolist(),
                        fired.episodes.tolist(),
                        strict=True,
                    ):
                        node = self.node_order[row]
                        events.append(
                            RiskEvent(
                                rule_id=spec.id,
                                kind=f"{scope}.{spec.metric}",
                                key=node,
                                severity=spec.severity,
                                value=float(value),
                                threshold=spec.threshold,
                                ts=now,
                                ingress_ts=oldest,
                                episode=int(episode),
                                dimension="account",
                                attributes={
                                    "scope": scope,
                                    "description": spec.description,
                                    "group_path": node if scope != "strategy" else "",
                                    **{
                                        k: v for k, v in nodes[node].items() if isinstance(v, float)
                                    },
                                },
                            )
                        )
        with self._lock:
            self.nodes, self.exposure = nodes, exposure
        if events and self.correlator is not None:
            self._sender.send(self.correlator.on_events.remote(events))
            self.counts["events"] += len(events)
        return len(events)

    def rollups(self, level: str | None = None, under: str = "") -> list[dict[str, Any]]:
        """Node figures, optionally one level and/or under one node, with exposure."""
        with self._lock:
            nodes, exposure = dict(self.nodes), dict(self.exposure)
        out = []
        for name in sorted(nodes):
            figures = nodes[name]
            if level and figures["level"] != level:
                continue
            if under and not (name == under or name.startswith(under.rstrip("/") + "/")):
                continue
            out.append({"node": name, **figures, "exposure": exposure.get(name, {})})
        return out

    def figures(self) -> dict[str, Any]:
        return {"shards_reporting": len(self.parts), "nodes": len(self.nodes)}
