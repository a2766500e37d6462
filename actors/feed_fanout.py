"""The fan-out of a MarketFeed, every `flush_ms`: the feed's lag first (actors.feed_lag), then
one PriceUpdate per free subscriber with the latest price of every contract that changed since
its last update — never one call per tick; a subscriber still busy with the previous update is
skipped this round and gets the coalesced changes next time — and the market RiskEvents raised
since the last flush to the Correlator in one call.
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
    `correlator`, `_events`, `_event_sender`, `event_latency`, `_lock`, the shell's `counts`,
    `lag` (LagMonitor), `price_arrival`/`price_sent`, `_unfolded_since()` and `_backlog()`."""

    def flush(self) -> int:
        """Send each free subscriber the contracts changed since its last update, and the
        Correlator the events raised since the last flush."""
        sent = 0
        now = time.time()
        self._observe_lag(now)
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
                self.price_arrival[rows] = self.arrival_last[rows]
                self.price_sent[rows] = now
            sub.sender.send(getattr(sub.handle, sub.method).remote(update))
            sub.last_sent = now
            sent += 1
        self.counts["updates_sent"] += sent
        self._flush_events(now)
        return sent

    def _observe_lag(self, now: float) -> None:
        """The feed's lag (actors.feed_lag): the oldest price still waiting for a subscriber,
        or the oldest frame received and not yet folded, whichever is older."""
        oldest = self._unfolded_since()
        with self._lock:
            n = len(self.names)
            for sub in self.subscribers:
                waiting = sub.arrival[:n][self.owned[:n]]
                if waiting.size:
                    # A subscriber's own cadence (books: one update a second) is not lateness.
                    oldest = min(oldest, float(waiting.min()) + sub.min_interval_s)
            lag = max(0.0, now - oldest) if np.isfinite(oldest) else 0.0
            self._m_lag.set(lag, tags=self._tags)
            if self.lag.observe(lag):
                attrs = {"backlog_frames": self._backlog(),
                         "frames_dropped": int(self.counts["frames_dropped"]),
                         "ticks_coalesced": int(self.counts["ticks_coalesced"])}  # fmt: skip
                self.counts["lag_events"] += 1
                self._queue([self.lag.event(self.name, oldest, attrs)])

    def _flush_events(self, now: float) -> None:
        if not self._events or self._event_sender.busy():
            return
        with self._lock:
            batch, self._events = self._events, []
        self._event_sender.send(self.correlator.on_events.remote(batch))
        self.event_latency.add([(now - e.ingress_ts) * 1000 for e in batch])
        self.counts["event_batches"] += 1
