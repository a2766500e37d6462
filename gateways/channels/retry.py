"""Retry one notification on one channel: the channel says *whether* to retry, this says *when*.

Exponential backoff with jitter, so many alerts failing at once do not hammer a recovering
provider in lockstep. Every attempt is reported through `on_attempt`, which the notifier uses to
journal attempts before acting on them.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from gateways.channels.base import Channel, DeliveryResult, Notification
from rules.notify.backoff import backoff_delay

__all__ = ["backoff_delay", "deliver_with_retry"]


def deliver_with_retry(
    channel: Channel,
    note: Notification,
    *,
    max_attempts: int = 5,
    base_delay: float = 0.2,
    max_delay: float = 5.0,
    jitter: float = 0.2,
    sleep: Callable[[float], None] = time.sleep,
    on_attempt: Callable[[int, DeliveryResult], None] | None = None,
    rng: random.Random | None = None,
) -> DeliveryResult:
    """Send until ok, a permanent failure (retry=False), or max_attempts; return the last result."""
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    attempt = 0
    while True:
        attempt += 1
        result = channel.send(note)
        if on_attempt is not None:
            on_attempt(attempt, result)
        if result.ok or not result.retry or attempt >= max_attempts:
            return result
        sleep(
            backoff_delay(
                attempt, base_delay=base_delay, max_delay=max_delay, jitter=jitter, rng=rng
            )
        )
