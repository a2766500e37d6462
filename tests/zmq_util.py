"""Helpers for tests that speak real ZeroMQ on loopback."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable

TIMEOUT_SCALE = float(os.environ.get("FENGKONG_TEST_TIMEOUT_SCALE", "3"))


def free_tcp_endpoint() -> str:
    """A loopback endpoint on a port the OS just handed out (bind to port 0, read it, release).

    There is a small window in which another process could take the port; on a test machine that
    is far less likely than a clash between fixed ports of parallel test runs.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"tcp://127.0.0.1:{port}"


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, interval: float = 0.01) -> bool:
    """Poll `predicate` until it is true or `timeout` seconds pass; returns its last value.

    The timeout is a bound for a slow, loaded machine, not a speed target: it is multiplied by
    FENGKONG_TEST_TIMEOUT_SCALE (default 3), which costs nothing when the predicate comes true.
    """
    deadline = time.monotonic() + timeout * TIMEOUT_SCALE
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
