"""A sliding-window rate limit, kept on our side so a provider's limit is respected by waiting.

WeCom group robots take 20 messages per rolling minute and answer 45009 beyond that; sending
anyway burns attempts and delays every message behind it. The notifier asks `wait_s` before it
sends and queues (or coalesces) instead of dropping. A send counts from when it is handed out
(`take`) and, once answered, from the answer (`settle`): the provider counted it somewhere in
between, so the later time is the safe one. The clock is passed in.
"""

from __future__ import annotations

import bisect


class SlidingWindow:
    def __init__(self, limit: int, window_s: float) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("a rate limit needs limit >= 1 and window_s > 0")
        self.limit = limit
        self.window_s = window_s
        self._sent: list[float] = []  # sorted

    def _expire(self, now: float) -> None:
        cut = bisect.bisect_right(self._sent, now - self.window_s)
        if cut:
            del self._sent[:cut]

    def remaining(self, now: float) -> int:
        self._expire(now)
        return self.limit - len(self._sent)

    def wait_s(self, now: float) -> float:
        """Seconds until one more request fits in the window (0 when it fits now)."""
        self._expire(now)
        if len(self._sent) < self.limit:
            return 0.0
        return max(0.0, self._sent[0] + self.window_s - now)

    def take(self, now: float) -> float:
        """Count one request sent at `now`; returns the token to `settle` it with."""
        self._expire(now)
        bisect.insort(self._sent, now)
        return now

    def settle(self, token: float, answered_at: float) -> None:
        """Move a request's count to when it was answered."""
        i = bisect.bisect_left(self._sent, token)
        if i < len(self._sent) and self._sent[i] == token:
            del self._sent[i]
            bisect.insort(self._sent, max(token, answered_at))
