"""The fan-out of a MarketFeed, every `flush_ms`: one PriceUpdate per free subscriber with the
latest price of every contract that changed since its last update — never one call per tick; a
subscriber still busy with the previous update is skipped this round and gets the coalesced
changes next time — and the market RiskEvents raised since the last flush to the Correlator in
one call.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from actors.common import BoundedSender
from rules.model import PriceUpdate


class Subscriber:
    """One consumer of price updates: what changed for it since its last update."""

    def __init__(self, handle: Any, method: str, capacity: int, min_interval_s: float) -> None:
        self.handle = handle
        self.method = method
        self.min_interval_s = min_interval_s  # slow consumers (books) need no 50 ms cadence
        self.last_sent = 0.0
        self.sender = BoundedSender(max_in_flight=1)
        self.pending = np.zeros(capacity, dtype=bool)
        self.arrival = np.full(capacity, np.inf)


class FeedFanout:
    """Mixin: needs the feed's `subscribers`, `names`, `owned`, `stats_engine`, `seq`, `name`,
    `correlator`, `_events`, `_event_sender`, `event_latency`, `_lock`, the shell's `counts`."""

    def flush(self) -> int:
        """Send each free subscriber the contracts changed since its last update, and the
        Correlator the events raised since the last flush."""
        sent = 0
        now = time.time()
        for sub in self.subscribers:
            if now - sub.last_sent < sub.min_interval_s:
                continue
            if sub.sender.busy():
                self.counts["coalesced"] += 1
                continue
            with self._lock:
                n = len(self.names)
                rows = np.flatnonzero(sub.pending[:n] & self.owned[:n])
                if rows.size == 0:
                    continue
                self.seq += 1
                st = self.stats_engine
                update = PriceUpdate(
                    instruments=[self.names[r] for r in rows],
                    last=st.last[rows].copy(),
                    upper_limit=st.upper[rows].copy(),
                    lower_limit=st.lower[rows].copy(),
                    pre_settlement=st.pre_settlement[rows].copy(),
                    arrival_ts=sub.arrival[rows].copy(),
                    seq=self.seq,
                    feed=self.name,
                    open_interest=st.open_interest[rows].copy(),
                )
                sub.pending[rows] = False
                sub.arrival[rows] = np.inf
            sub.sender.send(getattr(sub.handle, sub.method).remote(update))
            sub.last_sent = now
            sent += 1
        self.counts["updates_sent"] += sent
        self._flush_events(now)
        return sent

    def _flush_events(self, now: float) -> None:
        if not self._events or self._event_sender.busy():
            return
        with self._lock:
            batch, self._events = self._events, []
        self._event_sender.send(self.correlator.on_events.remote(batch))
        self.event_latency.add([(now - e.ingress_ts) * 1000 for e in batch])
        self.counts["event_batches"] += 1
