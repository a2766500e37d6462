"""Fund flows: unusual withdrawals are how a blow-up (or a fraud) announces itself.

Per account and trading day the ledger keeps deposits and withdrawals; the fund-flow rules
(rules.engine.kinds.fundflow: a single transfer above a limit, the day's outflow above k × the
mean daily outflow of the last N days with history) read it through a TransferSource.
History comes with the account's snapshot (the back office knows the last N days) and grows
with each transfer, so a restarted shard that replays its account stream rebuilds the same
ledger.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

BEIJING = 8 * 3600


def transfer_day(ts: float) -> str:
    """The banking day of a transfer, Beijing time (transfers settle on calendar days)."""
    return time.strftime("%Y%m%d", time.gmtime(ts + BEIJING))


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


class TransferSource:
    """The transfers of some accounts (rows), as the fund-flow rules read them: each row's
    amount and direction, booked in its ledger before it is judged (FundFlowRule)."""

    def __init__(self, day: str, transfers: Mapping[int, tuple[float, bool]],
                 ledgers: Mapping[int, FlowLedger]) -> None:  # fmt: skip
        self.day = day
        self.transfers = transfers
        self.ledgers = ledgers

    def __call__(self, metric: str, rows: np.ndarray) -> np.ndarray:
        if metric == "transfer":
            return self.amounts(rows)
        if metric == "day_outflow":
            return self.day_outflow(rows)
        raise KeyError(f"{metric!r} is not a transfer metric")

    def amounts(self, rows: np.ndarray) -> np.ndarray:
        return np.array([self.transfers[r][0] for r in rows.tolist()], dtype=np.float64)

    def deposits(self, rows: np.ndarray) -> np.ndarray:
        return np.array([self.transfers[r][1] for r in rows.tolist()], dtype=bool)

    def day_outflow(self, rows: np.ndarray) -> np.ndarray:
        return np.array(
            [self.ledgers[r].days.get(self.day, [0.0, 0.0])[1] for r in rows.tolist()],
            dtype=np.float64,
        )

    def baseline(self, rows: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Per row: the mean daily outflow of the last `n` days before the day, and how many."""
        pairs = [self.ledgers[r].baseline(self.day, n) for r in rows.tolist()]
        return (np.array([p[0] for p in pairs], dtype=np.float64),
                np.array([p[1] for p in pairs], dtype=np.int64))  # fmt: skip


def book_transfer(
    ledgers: dict[int, FlowLedger], row: int, ts: float, amount: float, deposit: bool
) -> TransferSource:
    """Book one transfer in its account's ledger; the source its rules are judged on."""
    day = transfer_day(ts)
    ledger = ledgers.setdefault(row, FlowLedger())
    ledger.add(day, amount, deposit)
    return TransferSource(day, {row: (amount, deposit)}, ledgers)
