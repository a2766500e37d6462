"""A scripted market that tests can also silence: per contract (mute) or entirely (pause)."""

from __future__ import annotations

import threading

import numpy as np

from infra.codec import encode_ticks
from rules.model import TickBatch
from tests.integration.harness import ScriptedMarket


class SteerableMarket(ScriptedMarket):
    def __init__(self, endpoint: str, prices: dict[str, float], period_s: float = 0.05) -> None:
        self.muted: set[str] = set()
        self.paused = threading.Event()
        super().__init__(endpoint, prices, period_s)

    def mute(self, *instruments: str) -> None:
        self.muted.update(instruments)

    def batch(self) -> TickBatch:
        b = super().batch()
        keep = np.array([name not in self.muted for name in b.instruments])
        fields = {
            f: getattr(b, f)[keep]
            for f in ("last", "volume", "open_interest", "bid", "ask", "exchange_ts",
                      "upper_limit", "lower_limit", "pre_settlement")
        }  # fmt: skip
        return TickBatch(b.instruments, np.flatnonzero(keep).astype(np.uint32), **fields)

    def _publish(self) -> None:  # every round, and at once on set(): not while paused
        if self.paused.is_set():
            return
        with self._lock:
            batch = self.batch()
            if len(batch) and not self._stop.is_set():
                self._sock.send_multipart([b"T", encode_ticks(batch)])
