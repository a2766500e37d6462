"""Fund-flow anomalies: unusual withdrawals are how a blow-up (or a fraud) announces itself.

Per account and trading day the ledger keeps deposits and withdrawals. A withdrawal is judged
twice: alone (a single transfer above a limit) and with the rest of the day (the day's outflow
above k × the mean daily outflow of the last N days with history). History comes with the
account's snapshot (the back office knows the last N days) and grows with each transfer, so a
restarted shard that replays its account stream rebuilds the same ledger.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

BEIJING = 8 * 3600


def transfer_day(ts: float) -> str:
    """The banking day of a transfer, Beijing time (transfers settle on calendar days)."""
    return time.strftime("%Y%m%d", time.gmtime(ts + BEIJING))


@dataclass(frozen=True, slots=True)
class FundFlowPolicy:
    k: float = 2.0  # day's outflow above k × the mean of the last `days` days
    days: int = 20
    min_days: int = 5  # fewer days of history is no baseline: judge single transfers only
    single_limit: float = 5_000_000.0  # a single transfer above this is an event by itself
    severity: str = "warning"


@dataclass(frozen=True, slots=True)
class FlowAnomaly:
    reason: str  # OUTFLOW_ABOVE_BASELINE or SINGLE_TRANSFER_ABOVE_LIMIT
    value: float
    threshold: float
    day: str
    detail: str


@dataclass(slots=True)
class FlowLedger:
    """Daily deposits and withdrawals of one account."""

    days: dict[str, list[float]] = field(default_factory=dict)  # day -> [deposit, withdraw]

    def seed(self, history: Iterable[Mapping[str, Any]]) -> None:
        for h in history:
            self.days[str(h["day"])] = [float(h.get("deposit", 0.0)), float(h.get("withdraw", 0.0))]

    def add(self, day: str, amount: float, deposit: bool) -> None:
        totals = self.days.setdefault(day, [0.0, 0.0])
        totals[0 if deposit else 1] += amount

    def baseline(self, day: str, n: int) -> tuple[float, int]:
        """Mean daily outflow of the last `n` days before `day` with history, and how many."""
        before = sorted(d for d in self.days if d < day)[-n:]
        if not before:
            return 0.0, 0
        return sum(self.days[d][1] for d in before) / len(before), len(before)

    def history(self, n: int) -> list[dict[str, Any]]:
        return [
            {"day": d, "deposit": v[0], "withdraw": v[1]} for d, v in sorted(self.days.items())[-n:]
        ]


def judge_transfer(
    ledger: FlowLedger, day: str, amount: float, deposit: bool, policy: FundFlowPolicy
) -> list[FlowAnomaly]:
    """Book a transfer in the ledger and return what is anomalous about it."""
    ledger.add(day, amount, deposit)
    out: list[FlowAnomaly] = []
    if amount > policy.single_limit:
        out.append(FlowAnomaly("SINGLE_TRANSFER_ABOVE_LIMIT", amount, policy.single_limit, day,
                               f"{'deposit' if deposit else 'withdrawal'} of {amount:,.2f}"))  # fmt: skip
    if deposit:
        return out
    mean, n = ledger.baseline(day, policy.days)
    outflow = ledger.days[day][1]
    if n >= policy.min_days and outflow > policy.k * mean:
        out.append(FlowAnomaly("OUTFLOW_ABOVE_BASELINE", outflow, policy.k * mean, day,
                               f"day's outflow {outflow:,.2f} > {policy.k:g} × mean {mean:,.2f} of {n} days"))  # fmt: skip
    return out
