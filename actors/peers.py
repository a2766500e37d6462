"""A peer actor passed by name: what the composition root hands an actor instead of a handle.

Ray 2.60 warns, for an actor created with `max_restarts > 0` whose constructor arguments hold an
actor handle, that its "constructor arguments [are] in the object store ... the actor restart
will fail" (ray-project/ray#53727: a handle serialized into the arguments is kept as a reference
whose lineage an actor restart cannot rebuild once its owner is gone). A `Peer` is only a name
and a namespace: nothing of it lives in the object store, and a restarted actor's constructor
gets the same two strings back. The handle is looked up by name (`ray.get_actor`) on first use
and kept; a call through it looks like a call through the handle (`peer.append.remote(...)`).

A Ray handle stays valid across its actor's restarts (same actor id), so a restart of the peer
needs nothing; `refresh()` drops the cached handle, for a caller that met the peer dead (killed
past its restarts and created again under its name by the supervisor), and the next use finds
the new one.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import ray

RESOLVE_TIMEOUT_S = 60.0  # a peer being created right now is found within this


class Peer:
    """A named actor, resolved lazily (see the module's docstring). Equal peers name the same
    actor; a Peer pickles as its name and namespace only."""

    __slots__ = ("_handle", "_lock", "name", "namespace")

    def __init__(self, name: str, namespace: str | None = None) -> None:
        self.name = name
        self.namespace = namespace
        self._handle: Any = None
        self._lock = threading.Lock()

    @classmethod
    def of(cls, name: str) -> Peer:
        """A peer in the calling job's namespace (the composition root's)."""
        return cls(name, ray.get_runtime_context().namespace)

    def handle(self) -> Any:
        """The actor's handle, looked up once (waits up to RESOLVE_TIMEOUT_S for a peer that
        is still being created: ValueError names it when it never appears)."""
        handle = self._handle
        if handle is not None:
            return handle
        with self._lock:
            if self._handle is None:
                self._handle = _lookup(self.name, self.namespace)
            return self._handle

    def refresh(self) -> None:
        """Forget the handle; the next use looks the name up again."""
        with self._lock:
            self._handle = None

    def __getattr__(self, method: str) -> Any:
        if method.startswith("__"):
            raise AttributeError(method)
        return getattr(self.handle(), method)

    def __reduce__(self) -> tuple[Any, tuple[str, str | None]]:
        return Peer, (self.name, self.namespace)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Peer) and (other.name, other.namespace) == (
            self.name,
            self.namespace,
        )

    def __hash__(self) -> int:
        return hash((self.name, self.namespace))

    def __repr__(self) -> str:
        return f"Peer({self.name!r})"


def _lookup(name: str, namespace: str | None) -> Any:
    deadline = time.monotonic() + RESOLVE_TIMEOUT_S
    delay = 0.05
    while True:
        try:
            return ray.get_actor(name, namespace=namespace)
        except ValueError:
            if time.monotonic() >= deadline:
                raise ValueError(
                    f"peer actor {name!r} (namespace {namespace!r}) not found within "
                    f"{RESOLVE_TIMEOUT_S:.0f} s"
                ) from None
            time.sleep(delay)  # created by the composition root right now: look again
            delay = min(delay * 2, 1.0)
