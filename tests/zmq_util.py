"""Helpers for tests that speak real ZeroMQ on loopback."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable

TIMEOUT_SCALE = float(os.environ.get("FENGKONG_TEST_TIMEOUT_SCALE", "3"))


# Ports tests hand out come from a band of this process's own (pytest-xdist runs one process
# per worker, gw0, gw1, ...), below the kernel's ephemeral range (32768+ on Linux) and above
# Ray's worker ports (10002-19999): a port released here is not handed to another worker, nor
# to a socket the kernel numbers itself, before the test binds it again. Within the band each
# port is handed out once per cycle, so a port released a moment ago is not handed out again.
BAND_START, BAND_SIZE = 20000, 2000
_handed = [0]


def _band() -> range:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    k = int(worker) % 6 if worker.isdigit() else 0
    return range(BAND_START + k * BAND_SIZE, BAND_START + (k + 1) * BAND_SIZE)


def free_tcp_port() -> int:
    """A free loopback port from this process's band (see above)."""
    band = _band()
    for _ in range(len(band)):
        port = band[_handed[0] % len(band)]
        _handed[0] += 1
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:  # taken (or still in TIME_WAIT): the next one
                continue
        return port
    raise RuntimeError(f"no free port in {band}")


def free_tcp_endpoint() -> str:
    """A loopback endpoint on a free port of this process's band (free_tcp_port)."""
    return f"tcp://127.0.0.1:{free_tcp_port()}"


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
