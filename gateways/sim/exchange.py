"""A simulated exchange: plausible ticks for many contracts over real ZeroMQ, and scripted shocks.

The risk system needs a market that behaves like one where it matters — prices on the tick grid,
inside the daily limits, a limit that locks a contract, moves that arrive over seconds rather than
in one jump — and that a demo or a test can steer (`shock`). Publishes `[b"T",
encode_ticks(batch)]` every `batch_ms`, the frame the CSV replay and a real CTP bridge publish
(the market wire format of `infra.codec`, read by `actors.market_feed`).

Model per instrument: pre-settlement = the spec's reference price × a small deterministic
perturbation (±3%, from a hash of the id); limits from `limit_prices`. The price is a geometric
random walk (annual volatility `vol_annual`, or scaled by the margin rate with `vol_by_margin`,
on trading time: 4 h × 250 days) with jumps of 0.5–1.5% (probability `jump_prob` per tick),
clamped to the limits and published rounded to the tick. Each instrument ticks with probability `ticks_per_contract_hz × batch_ms` per interval (at
most once); the first batch carries every instrument so subscribers start with a full price set.
A contract a shock pushed onto its limit stays locked there until another shock moves it off.
"""

from __future__ import annotations

import argparse
import math
import threading
import time
import zlib

import numpy as np
import zmq

from gateways.zmq_service import ZmqService
from infra.codec import encode_ticks
from rules.contracts import ContractTable, limit_prices
from rules.model import TickBatch

TRADING_SECONDS_PER_YEAR = 250 * 4 * 3600
REFERENCE_MARGIN = 0.10  # with vol_by_margin, a contract of this margin rate moves vol_annual
_MONTHS = ("01", "05", "09", "03", "07", "11")


def main_instruments(table: ContractTable, n: int, year: int = 26) -> list[str]:
    """n instrument ids across the table's products, round robin in table order: every product's
    January contract first, then May, September, ... CZCE ids use its 3-digit form ("SR601")."""
    products = list(table.products())
    out: list[str] = []
    for month in _MONTHS * max(1, math.ceil(n / max(1, len(products) * len(_MONTHS)))):
        for product in products:
            if len(out) >= n:
                return out
            yymm = (
                f"{year % 10}{month}"
                if table.spec(product).exchange == "CZCE"
                else f"{year:02d}{month}"
            )
            instrument = product + yymm
            if instrument not in out:
                out.append(instrument)
        if len(out) >= n:
            break
    return out[:n]


def _perturbation(instrument: str) -> float:
    """Deterministic factor in [0.97, 1.03] so contracts of one product differ a little."""
    return 1.0 + ((zlib.crc32(instrument.encode()) % 6001) - 3000) / 100_000


class SimExchange(ZmqService):
    """Random-walk market publishing tick frames; `shock()` scripts a move. Thread-safe reads."""

    def __init__(
        self,
        pub_endpoint: str,
        instruments: list[str],
        table: ContractTable,
        *,
        ticks_per_contract_hz: float = 4.0,
        batch_ms: int = 50,
        seed: int = 7,
        jump_prob: float = 0.001,
        vol_annual: float = 0.25,
        vol_by_margin: bool = False,
        quiet_ticks: bool = False,
    ) -> None:
        """`vol_by_margin`: each contract's volatility is `vol_annual` × its margin rate / 10%
        (exchanges set margins to cover a few days' moves: a 2% treasury future moves about a
        fifth as much as a 10% one), so no contract's leverage turns noise into a risk event;
        else every contract walks with `vol_annual`. `quiet_ticks`: the published price moves
        only once the walk is a full tick away from it, so a walk hovering at the midpoint of
        two ticks does not bounce between them — at 4 ticks a second that bounce alone reads
        as 100% a year of volatility on a contract whose tick is large against its price."""
        if not instruments:
            raise ValueError("SimExchange needs at least one instrument")
        super().__init__()
        self.pub_endpoint = pub_endpoint
        self.instruments = list(instruments)
        self.index = {name: i for i, name in enumerate(self.instruments)}
        specs = [table.spec(i) for i in self.instruments]  # UnknownContract for a bad id
        self.products = [s.product for s in specs]
        self.tick = np.array([s.tick_size for s in specs])
        self.limit_rate = np.array([s.limit_rate for s in specs])
        ref = np.array(
            [
                s.reference_price * _perturbation(i)
                for s, i in zip(specs, self.instruments, strict=True)
            ]
        )
        self._pre = np.round(np.round(ref / self.tick) * self.tick, 9)
        self._upper, self._lower = limit_prices(
            self._pre, np.array([s.limit_rate for s in specs]), self.tick
        )
        self.batch_s = batch_ms / 1000
        self.tick_prob = min(1.0, ticks_per_contract_hz * self.batch_s)
        self.jump_prob = jump_prob
        self.quiet_ticks = quiet_ticks
        dt_tick = 1.0 / max(ticks_per_contract_hz, 1e-9)
        self._seed = seed
        margin = np.array([s.margin_rate for s in specs])
        self.vol = vol_annual * (
            margin / REFERENCE_MARGIN if vol_by_margin else np.ones(len(specs))
        )
        self.sigma = self.vol * math.sqrt(dt_tick / TRADING_SECONDS_PER_YEAR)
        self._rng = np.random.default_rng(seed)
        n = len(self.instruments)
        self._true = self._pre.copy()  # unrounded walk
        self._last = self._pre.copy()
        self._volume = np.zeros(n)
        self._oi = np.round(self._rng.uniform(20_000, 400_000, n))
        self._locked = np.zeros(n, dtype=np.int8)  # +1 at upper limit, -1 at lower, 0 free
        # Active shocks: (instrument indices, log move per second, seconds of it still to apply).
        self._shocks: list[tuple[np.ndarray, float, float]] = []
        self._lock = threading.Lock()
        self._first = True
        self.stats: dict[str, int] = {"ticks_sent": 0, "batches_sent": 0}
        self._next_t: float | None = None  # monotonic time of the next batch

    # -- control and reads (any thread) ----------------------------------------------------
    def shock(self, products: list[str], pct: float, over_s: float = 2.0) -> list[str]:
        """Move every instrument of `products` by `pct` (−0.05 = −5%) over `over_s` seconds.

        Returns the instruments affected. The move is clamped at the limit; a contract that ends
        the shock at its limit stays locked there.
        """
        if pct <= -1:
            raise ValueError("a shock cannot take prices to zero or below")
        wanted = set(products)
        idx = np.array([i for i, p in enumerate(self.products) if p in wanted], dtype=np.int64)
        if idx.size == 0:
            return []
        rate = math.log1p(pct) / max(over_s, 1e-3)
        with self._lock:
            self._locked[idx] = 0
            self._shocks.append((idx, rate, max(over_s, 1e-3)))
        return [self.instruments[i] for i in idx]

    def price(self, instrument: str) -> float:
        with self._lock:
            return float(self._last[self.index[instrument]])

    def prices(self) -> dict[str, float]:
        with self._lock:
            return dict(zip(self.instruments, self._last.tolist(), strict=True))

    def settle(self) -> dict[str, float]:
        """The simulated trading day rolls: today's last prices become the settlement prices
        (the next day's previous settlement, its limits from them); returns them, for the
        accounts' settlement record (SimAccountSource.settle)."""
        with self._lock:
            self._pre = self._last.copy()
            self._upper, self._lower = limit_prices(self._pre, self.limit_rate, self.tick)
            self._locked[:] = 0
            return dict(zip(self.instruments, self._pre.tolist(), strict=True))

    def daily_closes(self, days: int) -> dict[str, list[float]]:
        """The simulator's warm-up: `days` daily closes per instrument, oldest first, the last
        one its previous settlement (yesterday's close). A daily geometric walk with the ticks'
        volatility (`vol_annual` over 250 days), seeded apart from the live walk so the ticks
        stay the same; it gives the exposure books the price history their VaR needs."""
        rng = np.random.default_rng(zlib.crc32(b"warm-up") ^ self._seed)
        steps = rng.normal(0.0, 1.0, (days - 1, len(self._pre))) * (self.vol / math.sqrt(250))
        back = np.exp(-np.cumsum(steps[::-1], axis=0))[::-1]  # close(d) / close(last)
        walk = np.vstack([self._pre * back, self._pre]) if days > 1 else self._pre[None, :]
        closes = np.round(np.round(walk / self.tick) * self.tick, 9)
        return {name: closes[:, i].tolist() for i, name in enumerate(self.instruments)}

    def pre_settlement(self, instrument: str) -> float:
        return float(self._pre[self.index[instrument]])

    def limits(self, instrument: str) -> tuple[float, float]:
        """(upper, lower) limit prices of an instrument."""
        i = self.index[instrument]
        return float(self._upper[i]), float(self._lower[i])

    # -- simulation ------------------------------------------------------------------------
    def step(self, now: float | None = None) -> TickBatch:
        """Advance one interval and return its ticks (the loop publishes them; tests may call it)."""
        now = time.time() if now is None else now
        rng = self._rng
        n = len(self.instruments)
        with self._lock:
            ticking = np.ones(n, dtype=bool) if self._first else rng.random(n) < self.tick_prob
            self._first = False
            live = []
            ending = []
            for idx, rate, remaining in self._shocks:
                # One interval's share of the move; the last share may be shorter.
                share = min(self.batch_s, remaining)
                self._true[idx] *= math.exp(rate * share)
                ticking[idx] = True
                if remaining - share > 1e-9:
                    live.append((idx, rate, remaining - share))
                else:
                    ending.append(idx)
            self._shocks = live
            k = np.flatnonzero(ticking)
            moves = rng.normal(0.0, 1.0, k.size) * self.sigma[k]
            jumps = rng.random(k.size) < self.jump_prob
            moves[jumps] += rng.choice((-1.0, 1.0), jumps.sum()) * rng.uniform(
                0.005, 0.015, jumps.sum()
            )
            self._true[k] *= np.exp(moves)
            np.clip(self._true, self._lower, self._upper, out=self._true)
            for idx in ending:  # a shock that ends on a limit locks the contract there
                self._locked[idx[self._true[idx] >= self._upper[idx]]] = 1
                self._locked[idx[self._true[idx] <= self._lower[idx]]] = -1
            self._true[self._locked == 1] = self._upper[self._locked == 1]
            self._true[self._locked == -1] = self._lower[self._locked == -1]
            rounded = np.clip(
                np.round(np.round(self._true / self.tick) * self.tick, 9), self._lower, self._upper
            )
            if self.quiet_ticks:  # a move is published once the walk is a full tick away
                near = np.abs(self._true - self._last) < self.tick * (1 - 1e-9)
                rounded = np.where(near & (self._locked == 0), self._last, rounded)
            self._last = rounded
            self._volume[k] += rng.integers(1, 50, k.size)
            self._oi[k] = np.maximum(0, self._oi[k] + rng.integers(-20, 21, k.size))
            last = self._last[k]
            tick = self.tick[k]
            return TickBatch(
                instruments=self.instruments,
                instrument_idx=k.astype(np.uint32),
                last=last.copy(),
                volume=self._volume[k].copy(),
                open_interest=self._oi[k].copy(),
                bid=np.round(np.maximum(last - tick, self._lower[k]), 9),
                ask=np.round(np.minimum(last + tick, self._upper[k]), 9),
                exchange_ts=np.full(k.size, now),
                upper_limit=self._upper[k].copy(),
                lower_limit=self._lower[k].copy(),
                pre_settlement=self._pre[k].copy(),
                sent_ts=now,
            )

    # -- lifecycle (ZmqService): one PUB socket, a batch every batch_s -------------------------
    thread_name = "sim-exchange"

    def _open(self) -> None:
        self._pub = self.socket(zmq.PUB, bind=self.pub_endpoint)
        self._next_t = None

    def wait_ms(self, now: float) -> int:
        return 0 if self._next_t is None else max(0, int((self._next_t - now) * 1000))

    def turn(self, now: float) -> None:
        if self._next_t is None:
            self._next_t = now
        if now < self._next_t:
            return
        batch = self.step()
        if len(batch):
            frame = encode_ticks(batch)
            # counted before the send: a subscriber that got n batches never reads fewer here
            self.stats["ticks_sent"] += len(batch)
            self.stats["batches_sent"] += 1
            self._pub.send_multipart([b"T", frame])
        self._next_t += self.batch_s
        if self._next_t - time.monotonic() < -1.0:  # far behind (machine paused): no burst
            self._next_t = time.monotonic()


def main(argv: list[str] | None = None) -> int:
    from infra.specs import load_contract_table

    parser = argparse.ArgumentParser(description="Run the simulated exchange until Ctrl-C.")
    parser.add_argument("--endpoint", default="tcp://127.0.0.1:21701")
    parser.add_argument("--contracts", type=int, default=60)
    parser.add_argument("--hz", type=float, default=4.0, help="mean ticks per contract per second")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    table = load_contract_table()
    instruments = main_instruments(table, args.contracts)
    exchange = SimExchange(
        args.endpoint, instruments, table, ticks_per_contract_hz=args.hz, seed=args.seed
    )
    with exchange:
        print(f"publishing {len(instruments)} contracts on {args.endpoint} (Ctrl-C stops)")
        try:
            while True:
                time.sleep(5)
                print(exchange.stats, flush=True)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
