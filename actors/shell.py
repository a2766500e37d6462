"""The actor shell: what every actor shares, written once (NautilusTrader's component base).

An actor of fengkong is its messages and nothing else; the shell gives it
- a lifecycle: `stop()` ends every background loop it started;
- background loops (`every(interval, step, name)`) that survive an error: it is counted under
  `<name>_errors`, kept as `last_error`, and the loop goes on;
- counters (`counts`), shown by `stats()`;
- a bounded quarantine of bad input, each entry with its reason (`reject(reason, item)`; the
  shell never calls it itself, so an actor whose messages include a `reject` — the Executor's
  approval refusal — may override it);
- metrics through ray.util.metrics (`metric(...)`), tagged with the actor's name;
- the system's `Context` (contracts, calendar with holidays, clock);
- `pid()`: the process that hosts it.

`stats()` is the shell's figures plus the actor's own (`figures()`).
"""

from __future__ import annotations

import collections
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from actors.context import Context
from infra import metrics

QUARANTINE_SIZE = 1000


class ActorShell:
    """Base of the actors; subclasses call `super().__init__(name, context)` first."""

    def __init__(
        self, name: str, context: Context | None = None, quarantine_size: int = QUARANTINE_SIZE
    ) -> None:
        self.name = name
        self.context = context if context is not None else Context.of()
        self.counts: collections.Counter[str] = collections.Counter()
        self.quarantine: collections.deque[dict[str, Any]] = collections.deque(
            maxlen=quarantine_size
        )
        self.last_error = ""
        self._stop = threading.Event()
        self._loops: list[threading.Thread] = []
        self._metrics: dict[str, Any] = {}

    # ---- lifecycle -------------------------------------------------------------------------

    def every(self, interval_s: float, step: Callable[[], Any], name: str) -> None:
        """Call `step` every `interval_s` on a daemon thread until `stop()`."""

        def loop() -> None:
            while not self._stop.wait(interval_s):
                try:
                    step()
                except Exception as exc:  # the loop outlives any one bad round
                    self.failed(name, exc)

        thread = threading.Thread(target=loop, name=f"{self.name}:{name}", daemon=True)
        thread.start()
        self._loops.append(thread)

    def stop(self) -> None:
        """End the background loops (the actor answers calls until Ray ends it)."""
        self._stop.set()
        for thread in self._loops:
            thread.join(timeout=2)

    def stopping(self) -> bool:
        return self._stop.is_set()

    # ---- counters, errors, quarantine ------------------------------------------------------

    def failed(self, where: str, exc: BaseException) -> None:
        """Count an error of one part (`<where>_errors`) and keep it as the last error."""
        self.counts[f"{where}_errors"] += 1
        self.last_error = f"{where}: {type(exc).__name__}: {exc}"[:500]

    def reject(self, reason: str, item: Any = None) -> None:
        """Quarantine one bad input with its reason; nothing else is lost."""
        if isinstance(item, bytes):
            item = item[:200]
        self.quarantine.append({"reason": reason, "item": item, "ts": time.time()})

    def reasons(self, last: int = 20) -> list[str]:
        """The reasons of the latest quarantined inputs."""
        return [q["reason"] for q in list(self.quarantine)[-last:]]

    # ---- metrics ---------------------------------------------------------------------------

    def metric(self, kind: str, name: str, description: str, **options: Any) -> Any:
        """A ray.util.metrics "counter", "gauge" or "histogram", created once per actor."""
        if name not in self._metrics:
            make = {"counter": metrics.counter, "gauge": metrics.gauge}.get(kind, metrics.histogram)
            self._metrics[name] = make(name, description, **options)
        return self._metrics[name]

    # ---- stats -----------------------------------------------------------------------------

    def figures(self) -> dict[str, Any]:
        """The actor's own figures for `stats()`."""
        return {}

    def pid(self) -> int:
        """The worker process that hosts this actor (operators and the chaos tests kill it)."""
        return os.getpid()

    def stats(self) -> dict[str, Any]:
        return {
            **dict(self.counts),
            "quarantined": len(self.quarantine),
            "last_error": self.last_error,
            **self.figures(),
        }
