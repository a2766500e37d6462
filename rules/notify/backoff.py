"""When to retry: exponential backoff with jitter, so many alerts failing at once do not hammer a
recovering provider in lockstep. The channel says *whether* a failure is worth retrying; this
says *when*. The random source is passed in (the machine keeps a seeded one)."""

from __future__ import annotations

import random


def backoff_delay(
    attempt: int,
    *,
    base_delay: float = 0.2,
    max_delay: float = 5.0,
    jitter: float = 0.2,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based).

    base_delay * 2**(attempt-1), spread by ±jitter (a fraction), never above max_delay.
    """
    delay = min(max_delay, base_delay * 2 ** (attempt - 1))
    if jitter:
        delay *= 1 + (rng or random).uniform(-jitter, jitter)
    return max(0.0, min(max_delay, delay))
