"""A circuit breaker per channel: stop hammering a provider that is down, probe it now and then.

Closed → `threshold` consecutive failures → open for `cooldown_s` → half-open: one probe is let
through; its success closes the breaker, its failure opens it again. While open, the notifier
fails notifications over to the next channel instead of queueing them behind a dead provider.
The clock is passed in, so the state machine is tested without sleeping.
"""

from __future__ import annotations

from dataclasses import dataclass

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


@dataclass
class CircuitBreaker:
    threshold: int = 5
    cooldown_s: float = 10.0
    state: str = CLOSED
    failures: int = 0
    opened_at: float = 0.0
    probing: bool = False
    trips: int = 0

    def allow(self, now: float) -> bool:
        """May a request go out now? In half-open state only one probe at a time."""
        if self.state == CLOSED:
            return True
        if self.state == OPEN and now - self.opened_at >= self.cooldown_s:
            self.state = HALF_OPEN
            self.probing = False
        if self.state == HALF_OPEN and not self.probing:
            self.probing = True
            return True
        return False

    def is_open(self, now: float) -> bool:
        """True while requests are refused (open and cooling down)."""
        return self.state == OPEN and now - self.opened_at < self.cooldown_s

    def record(self, ok: bool, now: float) -> None:
        """Feed the outcome of one request that `allow` let through."""
        if ok:
            self.state, self.failures, self.probing = CLOSED, 0, False
            return
        self.failures += 1
        if self.state == HALF_OPEN or self.failures >= self.threshold:
            if self.state != OPEN:
                self.trips += 1
            self.state, self.opened_at, self.probing = OPEN, now, False
