"""One lane per channel: what waits to be sent on it, and the rules of how fast.

A lane holds ready notifications (FIFO), ones waiting for a retry time (heap), a count in
flight, a circuit breaker and, for providers that limit us (the WeCom robot: 20 a minute), a
sliding window. `pump` hands out the units that may be sent now — one notification, or on a
rate-limited lane several coalesced into one post, so a burst is delivered in fewer posts instead
of waiting minutes behind the limit. Coalescing is a delivery concern of one channel, not
grouping: which alerts belong together was decided once, by the Correlator's hygiene; here
unrelated notifications merely share a post because the robot allows so few. Beyond `limit`
queued notifications the lane spills: the notification stays in the journal and only its key
stays here, until the lane has room and the shell reads it back.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from dataclasses import dataclass, field

from rules.notify.breaker import CircuitBreaker
from rules.notify.model import LaneSpec, Pending
from rules.notify.ratelimit import SlidingWindow


@dataclass
class Lane:
    spec: LaneSpec
    breaker: CircuitBreaker
    window: SlidingWindow | None = None
    limit: int = 10_000
    coalesce_max: int = 1
    ready: deque[Pending] = field(default_factory=deque)
    delayed: list[tuple[float, int, Pending]] = field(default_factory=list)
    spilled: deque[str] = field(default_factory=deque)
    in_flight: int = 0
    taken: deque[float] = field(default_factory=deque)  # window tokens of sends in flight
    _seq: itertools.count = field(default_factory=itertools.count)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def kind(self) -> str:
        return self.spec.kind

    def depth(self) -> int:
        return len(self.ready) + len(self.delayed) + len(self.spilled)

    def push(self, p: Pending, at: float = 0.0) -> bool:
        """Queue p (at a retry time, or now); False when it spilled (kept by key only)."""
        if len(self.ready) + len(self.delayed) >= self.limit:
            self.spilled.append(p.key)
            return False
        if at:
            heapq.heappush(self.delayed, (at, next(self._seq), p))
        else:
            self.ready.append(p)
        return True

    def take_spilled(self) -> list[str]:
        """Keys to read back now (once the lane is below half its limit)."""
        free = self.limit // 2 - len(self.ready) - len(self.delayed)
        n = min(free, len(self.spilled)) if free > 0 else 0
        return [self.spilled.popleft() for _ in range(n)]

    def remove(self, page_id: str) -> list[Pending]:
        """Take every queued (not in flight) notification of a page out of the lane."""
        gone = [p for p in self.ready if p.page_id == page_id]
        gone += [p for _, _, p in self.delayed if p.page_id == page_id]
        if gone:
            self.ready = deque(p for p in self.ready if p.page_id != page_id)
            self.delayed = [e for e in self.delayed if e[2].page_id != page_id]
            heapq.heapify(self.delayed)
        return gone

    def pump(self, now: float) -> tuple[list[list[Pending]], list[Pending], float]:
        """(units to send now, notifications to fail over, next time worth waking up at)."""
        while self.delayed and self.delayed[0][0] <= now:
            self.ready.append(heapq.heappop(self.delayed)[2])
        wake = self.delayed[0][0] if self.delayed else now + 1.0
        if not self.ready:
            return [], [], wake
        if self.breaker.is_open(now):
            wake = min(wake, self.breaker.opened_at + self.breaker.cooldown_s)
            if self.spec.failover:
                moved = list(self.ready)
                self.ready.clear()
                return [], moved, wake
            return [], [], wake
        units: list[list[Pending]] = []
        while self.ready and self.in_flight < self.spec.max_in_flight:
            if self.window is not None:
                wait = self.window.wait_s(now)
                if wait > 0:
                    return units, [], min(wake, now + wait)
                if self._lingering(now):
                    return units, [], min(wake, self.ready[0].not_before + self.spec.linger_s)
            if not self.breaker.allow(now):
                break
            units.append(self._take(now))
            if self.window is not None:
                self.window.take(now)
                self.taken.append(now)
            self.in_flight += 1
        return units, [], wake

    def answered(self, now: float) -> None:
        """One send came back: count it in the window from now (see ratelimit.settle)."""
        self.in_flight -= 1
        if self.window is not None and self.taken:
            self.window.settle(self.taken.popleft(), now)

    def _lingering(self, now: float) -> bool:
        """Under pressure (more waiting than half the posts left in the window), wait up to
        linger_s for a full batch rather than spend a post on a few."""
        if self.coalesce_max <= 1 or len(self.ready) >= self.coalesce_max or self.window is None:
            return False
        pressed = len(self.ready) >= max(1, self.window.remaining(now) // 2)
        return pressed and now - self.ready[0].not_before < self.spec.linger_s

    def _take(self, now: float) -> list[Pending]:
        """One notification, or several coalesced when the window could not carry them one by
        one (more waiting than half the posts left in it)."""
        unit = [self.ready.popleft()]
        if self.window is None or len(self.ready) < self.window.remaining(now) // 2:
            return unit
        while self.ready and len(unit) < self.coalesce_max:
            unit.append(self.ready.popleft())
        return unit


def build_lane(
    spec: LaneSpec, queue_limit: int, coalesce_max: int, failures: int, cooldown_s: float
) -> Lane:
    window = SlidingWindow(*spec.rate) if spec.rate else None
    return Lane(
        spec=spec,
        breaker=CircuitBreaker(failures, cooldown_s),
        window=window,
        limit=queue_limit,
        coalesce_max=coalesce_max if window else 1,
    )
