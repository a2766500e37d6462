"""The console for tests: one Serve HTTP port per test process, people with known passwords.

Ray Serve runs one HTTP proxy per cluster and keeps the port it first started on, so every test
of a process that deploys the console (the browser test, the notifier's callbacks, the closed
loop's approval API) uses the same free port, chosen once here.
"""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Any

from app.console.store import ConsoleStore
from tests.zmq_util import free_tcp_port, wait_until

_PORT: list[int] = []


def console_port() -> int:
    """The console's port for this test process (Serve keeps its HTTP port per Ray session)."""
    if not _PORT:
        _PORT.append(free_tcp_port())
    return _PORT[0]


def console_table(tmp: Path, people: dict[str, tuple[str, str]], **extra: Any) -> dict[str, Any]:
    """A `[console]` table on this process's port, its store holding `people`
    ({name: (role, password)}) with argon2 hashes, as `fengkong people add` leaves them."""
    store_path = tmp / "console.sqlite"
    store = ConsoleStore(store_path)
    try:
        for name, (role, password) in people.items():
            store.add_person(name, role, password)
    finally:
        store.close()
    return {"enabled": True, "port": console_port(), "store_path": str(store_path), **extra}


def roster(people: dict[str, tuple[str, str]]) -> list[dict[str, str]]:
    return [{"name": n, "role": r} for n, (r, _p) in people.items()]


def is_up(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def wait_up(url: str, timeout_s: float = 60.0) -> None:
    assert wait_until(lambda: is_up(url), timeout_s), f"the console did not come up at {url}"


def api_token(store_path: str, name: str, label: str = "tests") -> str:
    store = ConsoleStore(store_path)
    try:
        return store.issue_token(name, label)
    finally:
        store.close()
