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
- a public API and nothing else (`guard_private`, applied to every subclass): Ray exposes every
  method of an actor class, so `executor._perform.remote([SendOrders(...)])` would send an order
  no one approved. A private method (`_name`) invoked by Ray's task executor, and Ray's
  `__ray_call__` (which runs any closure on the instance), are refused with `PRIVATE_METHOD`,
  counted (`private_calls_refused`) and kept in the quarantine; the actor's own code calls them
  as before.
- `pid()`: the process that hosts it.

`stats()` is the shell's figures plus the actor's own (`figures()`).
"""

from __future__ import annotations

import collections
import functools
import inspect
import os
import sys
import threading
import time
import types
from collections.abc import Callable
from typing import Any

from actors.context import Context
from infra import metrics

QUARANTINE_SIZE = 1000
PRIVATE_METHOD = "PRIVATE_METHOD"
_RAY_PACKAGE = ("ray.", "ray")  # the module names of Ray's own frames (its task executor)
_TRACING = "ray.util.tracing.tracing_helper"  # Ray's wrapper around every actor method


class PrivateMethodRefused(PermissionError):
    """A private method (or `__ray_call__`) was invoked over Ray: not part of the actor's API."""


def _refuse(instance: Any, name: str) -> PrivateMethodRefused:
    cls = type(instance).__name__
    why = f"{PRIVATE_METHOD}: {cls}.{name} is not part of its API (call a public method)"
    counts = getattr(instance, "counts", None)
    if isinstance(counts, collections.Counter):
        counts["private_calls_refused"] += 1
    quarantine = getattr(instance, "quarantine", None)
    if isinstance(quarantine, collections.deque):  # the Executor overrides `reject`: not that
        quarantine.append({"reason": why, "item": name, "ts": time.time()})
    return PrivateMethodRefused(why)


def _from_ray(frame: types.FrameType | None) -> bool:
    """True when the caller is Ray's task executor, i.e. the method was invoked over Ray. Ray
    wraps every method of an actor class in its tracing helper (`_resume_span`), on internal
    calls too, so those frames are looked through to the real caller."""
    while frame is not None and frame.f_globals.get("__name__", "") == _TRACING:
        frame = frame.f_back
    module = frame.f_globals.get("__name__", "") if frame is not None else ""
    return module == _RAY_PACKAGE[1] or module.startswith(_RAY_PACKAGE[0])


def _guarded(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _from_ray(sys._getframe(1)):
            raise _refuse(self, name)
        return fn(self, *args, **kwargs)

    method.__fengkong_guarded__ = True  # type: ignore[attr-defined]
    return method


def _no_ray_call(self: Any, fn: Any = None, *args: Any, **kwargs: Any) -> Any:
    raise _refuse(self, "__ray_call__")


def guard_private(cls: type) -> type:
    """Make `cls` answer over Ray with its public methods only (see the module's docstring).

    Plain functions whose name starts with one underscore are wrapped (static and class methods
    and properties are left alone: no actor defines a private one); Ray's modified class
    (`__ray_actor_class__` set) also loses `__ray_call__`. A private coroutine function
    (`AuditLog._committed_through`) gets the same plain wrapper, which checks its caller when
    the coroutine is made, before anything runs: `await self._x()` gets the coroutine, a call
    from Ray is refused. (The body of a coroutine runs later, under the event loop, where the
    caller is gone; Python 3.11 cannot mark a plain function as a coroutine function, so Ray
    takes a guarded private coroutine for a plain method — it only ever refuses there. An
    actor stays asynchronous through its public coroutines.) Usable as a class decorator on
    an actor that is not an `ActorShell`. Ray's own handle classes (`ray.actor.ActorClass`
    derives from the actor class) are left alone: their private methods are Ray's."""
    if any(base.__module__.startswith(_RAY_PACKAGE[0]) for base in cls.__mro__[1:]):
        return cls
    for name in dir(cls):
        if not name.startswith("_") or name.startswith("__"):
            continue
        raw = inspect.getattr_static(cls, name)
        if not isinstance(raw, types.FunctionType) or getattr(raw, "__fengkong_guarded__", False):
            continue
        setattr(cls, name, _guarded(name, raw))
    if "__ray_actor_class__" in cls.__dict__ or "__ray_call__" in cls.__dict__:
        cls.__ray_call__ = _no_ray_call  # type: ignore[attr-defined]
    return cls


class ActorShell:
    """Base of the actors; subclasses call `super().__init__(name, context)` first."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        guard_private(cls)

    def node_ip(self) -> str:
        """The address of the node this actor runs on (the supervisor's status table; it used
        `__ray_call__`, which the guard refuses)."""
        import ray

        return str(ray.util.get_node_ip_address())

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

    def env_held(self, names: list[str]) -> list[str]:
        """Which of `names` this actor's process has in its environment — names only, never the
        values: how a deployer checks that a secret reached only the roles that use it."""
        return [n for n in names if n in os.environ]

    def stats(self) -> dict[str, Any]:
        return {
            **dict(self.counts),
            "quarantined": len(self.quarantine),
            "last_error": self.last_error,
            **self.figures(),
        }
