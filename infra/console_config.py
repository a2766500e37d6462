"""Config of the operator console: where it listens, its public URL, and the [[people]] roster.

Kept apart from infra/config.py (already long); `Config.console` and `Config.people` use these.
Passwords never appear here: `fengkong people add NAME --role R` stores an argon2 hash in the
console's own file (`console.store_path`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ConsoleConfig:
    """The console's Serve application ("fengkong-console") and its login policy."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 8000  # Serve's HTTP proxy port
    public_url: str = ""  # what links in notifications point at; default http://host:port
    store_path: str = "var/console.sqlite"
    session_idle_s: float = 1800.0
    session_max_s: float = 43_200.0
    lockout_failures: int = 5
    lockout_window_s: float = 900.0
    lockout_s: float = 900.0
    board_rows: int = 50
    live_interval_s: float = 0.5  # server-sent events cadence (the board is ≤ 1 s behind)

    @property
    def url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")


@dataclass(frozen=True)
class PersonConfig:
    """One person of the roster: a console role (viewer, risk_officer, approver, admin)."""

    name: str
    role: str = "viewer"
    display: str = ""
