"""kill -9 of a Ray actor's process, and waiting for Ray to bring it back.

The PID is the actor's own answer (`ActorShell.pid`: `os.getpid()` in the worker process that
hosts it). Ray's state API (`ray.util.state`) would name it too, but it needs the dashboard,
which the test session's Ray runs without, and on a shared machine it finds other sessions'
clusters. The kill is SIGKILL, so nothing of the actor's runs after it (no finally, no flush).
Every wait is on a condition with a deadline: a kill is triggered by what the system did (a
record count reached, a message stored), never by a sleep that hopes.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from typing import Any

import ray


def actor_pid(actor: Any, timeout: float = 30.0) -> int:
    """The PID of the live process hosting `actor`."""
    return int(ray.get(actor.pid.remote(), timeout=timeout))


def kill9(actor: Any) -> int:
    """SIGKILL the actor's process; returns the PID that was killed."""
    pid = actor_pid(actor)
    os.kill(pid, signal.SIGKILL)
    return pid


def wait_restarted(actor: Any, old_pid: int, timeout: float = 60.0) -> int:
    """Wait until Ray has restarted the actor in a new process that answers calls."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            ray.get(actor.stats.remote(), timeout=5)
            pid = actor_pid(actor, timeout=5)
            if pid != old_pid:
                return pid
        except Exception:  # restarting: not answering yet
            pass
        time.sleep(0.05)
    raise AssertionError(f"actor not restarted within {timeout}s (old pid {old_pid})")


def kill_when(actor: Any, condition: Callable[[], bool], timeout: float = 30.0) -> int:
    """SIGKILL the actor as soon as `condition()` holds (polled); returns the killed PID."""
    pid = actor_pid(actor)
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"kill condition never held within {timeout}s")
        time.sleep(0.002)
    os.kill(pid, signal.SIGKILL)
    return pid
