"""fund_flow: unusual transfers, judged when they happen (an AccountShard calls its transfer
engine for every deposit and withdrawal).

    [[rules]]                               [[rules]]
    id = "account.fund_flow.single"         id = "account.fund_flow.outflow"
    kind = "fund_flow"                      kind = "fund_flow"
    metric = "transfer"                     metric = "day_outflow"
    threshold = 5_000_000                   threshold = 2.0      # k × the mean daily outflow
                                            days = 20            # ... of the last N days
                                            min_days = 5         # fewer: no baseline

- transfer: one transfer (deposit or withdrawal, see `direction`) above `threshold`;
- day_outflow: after a withdrawal, the day's outflow above `threshold` × the mean daily outflow
  of the last `days` days with history (rules.fundflow.FlowLedger), judged only from
  `min_days` days of history on. The event's threshold is k × mean, in money.

A transfer is a point event: each one is judged alone, so the rule re-arms after every
transfer (the engine's ThresholdBank, re-armed at once) and every transfer past the line is an
event — the shard makes their alert ids deterministic, so a replay raises nothing twice.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rules.engine.kinds.threshold import ThresholdBank
from rules.engine.metrics import FUND_FLOW_METRICS
from rules.engine.spec import RuleSpec, check_common
from rules.engine.template import Fired, KeyedGroup, Param, RuleKind, Source
from rules.fundflow import TransferSource

DIRECTIONS = ("any", "deposit", "withdraw")


class FundFlowKind(RuleKind):
    name = "fund_flow"
    scopes = ("account",)
    params = (
        Param("days", int, 20, "day_outflow: days of history the mean is taken over"),
        Param("min_days", int, 5, "day_outflow: fewer days of history is no baseline"),
        Param("direction", str, "any", "transfer: which transfers are judged", DIRECTIONS),
    )

    def place(self, spec: RuleSpec) -> str:
        return "transfers"

    def check(self, spec: RuleSpec, metrics: Any) -> None:
        check_common(spec)
        if spec.scope != "account":
            raise ValueError(f"scope: kind 'fund_flow' runs on accounts, got {spec.scope!r}")
        if spec.metric not in FUND_FLOW_METRICS:
            raise ValueError(f"metric: must be one of {FUND_FLOW_METRICS}, got {spec.metric!r}")
        if spec.op != ">":
            raise ValueError("op: kind 'fund_flow' fires above its threshold, use '>'")
        if int(spec.param("days", 1)) < 1 or int(spec.param("min_days", 0)) < 0:
            raise ValueError("days: must be at least 1 (and min_days zero or more)")

    def build(self, specs: list[RuleSpec]) -> KeyedGroup:
        return FundFlowRule(specs[0])


class FundFlowRule(KeyedGroup):
    """One fund-flow rule over the accounts of a shard; `evaluate` takes a TransferSource."""

    def __init__(self, spec: RuleSpec) -> None:
        super().__init__([spec])
        self.spec = spec
        self.bank = ThresholdBank([spec])

    def resize(self, n: int) -> None:
        self.bank.resize(n)
        self.n = max(self.n, n)

    def evaluate(self, source: Source, rows: np.ndarray, ts: float) -> list[Fired]:
        if rows.size == 0:
            return []
        if not isinstance(source, TransferSource):
            raise TypeError("fund_flow rules are evaluated on transfers (a TransferSource)")
        spec = self.spec
        deposit = source.deposits(rows)
        if spec.metric == "transfer":
            compared = source.amounts(rows)
            direction = spec.param("direction", "any")
            if direction != "any":
                compared[deposit != (direction == "deposit")] = np.nan
            limits = np.full(rows.size, spec.threshold)
            reported = compared
        else:
            outflow = source.day_outflow(rows)
            mean, days = source.baseline(rows, int(spec.param("days", 20)))
            with np.errstate(divide="ignore", invalid="ignore"):
                compared = np.where(mean > 0, outflow / mean, np.where(outflow > 0, np.inf, np.nan))
            compared[deposit | (days < int(spec.param("min_days", 5)))] = np.nan
            limits = spec.threshold * mean
            reported = outflow
        self.bank.resize(int(rows.max()) + 1)
        at, episodes = self.bank.step_one(compared, rows)
        self.bank.rearm(rows)  # each transfer is judged alone
        if not at.size:
            return []
        return [Fired(spec, rows[at], reported[at], episodes, limits[at])]

    def export(self, rule_id: str) -> Any:
        return self.bank.export(rule_id)

    def restore(self, rule_id: str, state: Any) -> None:
        self.bank.restore(rule_id, state)
