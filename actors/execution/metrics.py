"""The Executor's metrics (Ray dashboard) and latency rings (stats), fed by the machine's effects."""

from __future__ import annotations

from typing import Any

from infra import metrics
from infra.stats import LatencyRing
from rules.execution.messages import Closed, Decided, SendOrders

ACTOR = {"actor": "Executor"}


class ExecutorMetrics:
    def __init__(self) -> None:
        self.proposal_to_fill = LatencyRing()
        self.decision_to_close = LatencyRing()
        self._orders = metrics.counter("orders_total", "orders sent", tag_keys=("actor",))
        self._closed = metrics.counter(
            "proposals_closed_total", "proposals closed, by state", tag_keys=("actor", "state")
        )
        self._decision = metrics.histogram(
            "proposal_to_decision_s",
            "proposal created to its deciding approval or rejection",
            [1, 5, 10, 30, 60, 180, 300, 600, 1800, 3600],
        )
        self._exec = metrics.histogram(
            "decision_to_close_ms",
            "approval to the action verified (or failed)",
            [10, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 30_000, 60_000],
        )
        self._rate = metrics.gauge(
            "closed_loop_rate",
            "events whose action executed and verified over events that needed action "
            "(moot left out; NaN while none needed any)",
        )

    def observe(self, effect: Any, closed_loop_rate: float | None) -> None:
        """`closed_loop_rate`: the machine's (rules.execution.outcomes), None while no event
        needed action — the gauge then reads NaN rather than a 100% nothing earned."""
        if isinstance(effect, SendOrders):
            n = sum(1 for m in effect.messages if "type" not in m)
            if n:
                self._orders.inc(n, tags=ACTOR)
        elif isinstance(effect, Decided):
            self._decision.observe(effect.waited_s, tags=ACTOR)
        elif isinstance(effect, Closed):
            if effect.proposal_to_fill_ms is not None:
                self.proposal_to_fill.add(effect.proposal_to_fill_ms)
            if effect.decision_to_close_ms is not None:
                self.decision_to_close.add(effect.decision_to_close_ms)
                self._exec.observe(effect.decision_to_close_ms, tags=ACTOR)
            self._closed.inc(tags={**ACTOR, "state": effect.state})
            self._rate.set(
                float("nan") if closed_loop_rate is None else closed_loop_rate, tags=ACTOR
            )

    def stats(self) -> dict[str, Any]:
        return {
            "decision_to_close_ms": self.decision_to_close.percentiles((50, 99)),
            "proposal_to_fill_ms": self.proposal_to_fill.percentiles((50, 99)),
        }
