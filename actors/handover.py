"""Hand-overs a sender fired and did not wait for: it can still tell when its peer took them all.

The Correlator hands each due group to the Notifier with one call it does not wait on (a slow
Notifier must not hold the next group). Whoever needs the far end settled (a test before it
reads the sink, a shutdown) asks `wait`: nothing being handed over, every call answered."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import ray

POLL_S = 0.02


class Handovers:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._busy = 0  # taken from the sender's state, call not yet made
        self._refs: list[Any] = []

    def begin(self) -> None:
        """Call where the items leave the sender's state, under the sender's own lock."""
        with self._lock:
            self._busy += 1

    def done(self, ref: Any = None) -> None:
        """The call is made (`ref`), or there was nothing to call after all."""
        with self._lock:
            self._busy -= 1
            if ref is not None:
                if self._refs:  # keep only the calls not answered yet
                    _, self._refs = ray.wait(self._refs, num_returns=len(self._refs), timeout=0)
                self._refs.append(ref)

    def wait(self, timeout: float, held: Callable[[], bool] = lambda: False) -> bool:
        """True once the sender holds nothing (`held`), nothing is being handed over and every
        call made so far has answered; False when `timeout` passed first."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                busy, refs = self._busy, list(self._refs)
            if not busy and not held():
                left = max(0.0, deadline - time.monotonic())
                _, rest = ray.wait(refs, num_returns=len(refs), timeout=left) if refs else ([], [])
                if not rest:
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_S)
