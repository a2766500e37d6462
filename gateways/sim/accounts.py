"""A simulated account population that speaks the account bus protocol (see `bus.py`).

Deterministic (seeded), so a test can rebuild the expected figures from `accounts()`. Risk degrees
are chosen, not left to chance: each account draws a target risk degree and its pre-balance is
solved from it at the given prices, so the population spreads from ~20% to ~78% with a band just
under the 80% warning line — a shock of a few percent on a held product pushes those over, which
is what a demo and an end-to-end test need to see.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import zmq

from infra.codec import encode_records
from rules.contracts import ContractTable

FRAME_RECORDS = 2_000
NEAR_LINE_SHARE = 0.15  # share of accounts drawn just under the 80% line
RISK_LOW, RISK_HIGH, NEAR_LINE_LOW = 0.20, 0.78, 0.72


class SimAccountSource:
    """Generates accounts and PUSHes their events to the account bus inbound endpoint."""

    def __init__(
        self,
        inbound_endpoint: str,
        instruments: list[str],
        table: ContractTable,
        prices: Mapping[str, float],
        *,
        n_accounts: int = 10_000,
        positions_per_account: int = 3,
        seed: int = 7,
        group_levels: Sequence[str] = ("grp", "sub", "unit"),
        margin_markup: float = 0.0,
        event_rate_hz: float = 1.0,
        linger_ms: int = 1000,
    ) -> None:
        """`linger_ms`: how long closing waits for queued events to leave (a source that closes
        with linger 0 right after `publish_snapshots` would silently drop them)."""
        missing = [i for i in instruments if i not in prices]
        if missing:
            raise ValueError(f"no price for {missing[:5]}")
        self.inbound_endpoint = inbound_endpoint
        self.instruments = list(instruments)
        self.table = table
        self.margin_markup = margin_markup
        self.event_rate_hz = event_rate_hz
        self.linger_ms = linger_ms
        self.stats: dict[str, int] = {"sent": 0, "frames": 0}
        self._rng = np.random.default_rng(seed + 1)  # background events, apart from the population
        self._draw = (n_accounts, positions_per_account, seed, tuple(group_levels), margin_markup)
        self._accounts = _population(self.instruments, table, prices, *self._draw)
        self._ids = [a["account_id"] for a in self._accounts]
        self._push: zmq.Socket | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def accounts(self) -> list[dict[str, Any]]:
        """The generated snapshot records (the originals, not copies: do not mutate them)."""
        return self._accounts

    # -- sending ---------------------------------------------------------------------------
    def send(self, records: list[dict[str, Any]]) -> None:
        """PUSH records in frames of at most FRAME_RECORDS (thread-safe)."""
        with self._lock:
            if self._push is None:
                self._push = zmq.Context.instance().socket(zmq.PUSH)
                self._push.setsockopt(zmq.SNDHWM, 0)
                self._push.connect(self.inbound_endpoint)
            for i in range(0, len(records), FRAME_RECORDS):
                chunk = records[i : i + FRAME_RECORDS]
                self._push.send(encode_records("account_events", chunk))
                self.stats["sent"] += len(chunk)
                self.stats["frames"] += 1

    def rebase(
        self, prices: Mapping[str, float], pre_settlement: Mapping[str, float] | None = None
    ) -> None:
        """Solve the same population again at `prices` (same seed: the same accounts, positions
        and drawn risk degrees): the market walked on while the system started, and accounts
        solved at older prices would no longer be at their drawn risk degrees when they land.
        `pre_settlement`: the previous settlement the feed sends, against which yesterday's
        lots are marked (逐日盯市); without it, `prices`."""
        missing = [i for i in self.instruments if i not in prices]
        if missing:
            raise ValueError(f"no price for {missing[:5]}")
        self._accounts = _population(
            self.instruments, self.table, prices, *self._draw, pre_settlement=pre_settlement
        )
        self._ids = [a["account_id"] for a in self._accounts]

    def publish_snapshots(
        self,
        prices: Mapping[str, float] | None = None,
        pre_settlement: Mapping[str, float] | None = None,
    ) -> int:
        """Send every account's snapshot; with `prices`, solved at them first (`rebase`)."""
        if prices is not None:
            self.rebase(prices, pre_settlement)
        self.send(self._accounts)
        return len(self._accounts)

    def deposit(self, account_id: str, amount: float) -> None:
        self.send(
            [
                {
                    "type": "deposit",
                    "account_id": account_id,
                    "amount": float(amount),
                    "ts": time.time(),
                }
            ]
        )

    def withdraw(self, account_id: str, amount: float) -> None:
        self.send(
            [
                {
                    "type": "withdraw",
                    "account_id": account_id,
                    "amount": float(amount),
                    "ts": time.time(),
                }
            ]
        )

    def trade(
        self,
        account_id: str,
        instrument: str,
        direction: str,
        offset: str,
        volume: float,
        price: float,
        *,
        commission: float = 0.0,
        trade_id: str = "",
        order_ref: str = "",
    ) -> None:
        self.send(
            [
                {
                    "type": "trade",
                    "account_id": account_id,
                    "instrument": instrument,
                    "direction": direction,
                    "offset": offset,
                    "volume": float(volume),
                    "price": float(price),
                    "commission": float(commission),
                    "trade_id": trade_id or f"SIM-{time.time_ns()}",
                    "order_ref": order_ref,
                    "ts": time.time(),
                }
            ]
        )

    def settle(self, prices: Mapping[str, float], trading_day: str, next_trading_day: str) -> dict:
        """The day boundary: one settlement record for every account (docs/accounts-wire.md)."""
        record = {"type": "settlement", "trading_day": trading_day,
                  "next_trading_day": next_trading_day,
                  "prices": {k: float(v) for k, v in prices.items()}, "ts": time.time()}  # fmt: skip
        self.send([record])
        return record

    # -- background stream -----------------------------------------------------------------
    def start(self) -> SimAccountSource:
        """Emit random small deposits/withdrawals at `event_rate_hz` until stop()."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="sim-accounts", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        if self.event_rate_hz <= 0:
            return
        while not self._stop.wait(self._rng.exponential(1.0 / self.event_rate_hz)):
            account_id = self._ids[int(self._rng.integers(len(self._ids)))]
            amount = float(np.round(self._rng.uniform(1_000, 20_000), -2))
            if self._rng.random() < 0.6:
                self.deposit(account_id, amount)
            else:
                self.withdraw(account_id, amount)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        with self._lock:
            if self._push is not None:
                self._push.close(linger=self.linger_ms)
                self._push = None

    close = stop

    def __enter__(self) -> SimAccountSource:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def group_paths(levels: tuple[str, ...]) -> list[str]:
    """2 groups × 3 subsidiaries × 4 units: "grpA/sub2/unit07"-style paths."""
    g, s, u = (levels + ("grp", "sub", "unit"))[:3]
    return [
        f"{g}{group}/{s}{sub}/{u}{(sub - 1) * 4 + unit:02d}"
        for group in "AB"
        for sub in (1, 2, 3)
        for unit in (1, 2, 3, 4)
    ]


def _population(
    instruments: list[str],
    table: ContractTable,
    prices: Mapping[str, float],
    n_accounts: int,
    positions_per_account: int,
    seed: int,
    levels: tuple[str, ...],
    markup: float,
    pre_settlement: Mapping[str, float] | None = None,
) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    pre_of = pre_settlement or prices
    paths = group_paths(levels)
    k = min(positions_per_account, len(instruments))
    specs = {i: table.spec(i) for i in instruments}
    accounts: list[dict[str, Any]] = []
    for n in range(n_accounts):
        picks = rng.choice(len(instruments), size=k, replace=False)
        positions = []
        margin = profit = 0.0
        for j in picks:
            instrument = instruments[int(j)]
            spec = specs[instrument]
            price = float(prices[instrument])
            volume = int(rng.integers(1, 21))
            cost = round(
                round(price * (1 + rng.uniform(-0.01, 0.01)) / spec.tick_size) * spec.tick_size, 9
            )
            direction = "long" if rng.random() < 0.5 else "short"
            sign = 1 if direction == "long" else -1
            today = int(rng.integers(0, volume + 1)) if rng.random() < 0.3 else 0
            margin += price * volume * spec.multiplier * (spec.margin_rate + markup)
            # 逐日盯市 (CTP's default): yesterday's lots carry profit from the previous
            # settlement, today's lots from their open price.
            pre = float(pre_of[instrument])
            profit += sign * (price - cost) * today * spec.multiplier
            profit += sign * (price - pre) * (volume - today) * spec.multiplier
            positions.append(
                {
                    "instrument": instrument,
                    "direction": direction,
                    "volume": volume,
                    "cost_price": cost,
                    "today_volume": today,
                }
            )
        if rng.random() < NEAR_LINE_SHARE:
            target = rng.uniform(NEAR_LINE_LOW, RISK_HIGH)
        else:
            target = rng.uniform(RISK_LOW, RISK_HIGH)
        equity = margin / target
        accounts.append(
            {
                "type": "snapshot",
                "account_id": f"ACC{n + 1:06d}",
                # equity = pre_balance + position profit, the other figures start at zero
                "pre_balance": round(equity - profit, 2),
                "group_path": paths[n % len(paths)],
                "deposit": 0.0,
                "withdraw": 0.0,
                "close_profit": 0.0,
                "commission": 0.0,
                "frozen_margin": 0.0,
                "frozen_commission": 0.0,
                "positions": positions,
            }
        )
    return accounts
