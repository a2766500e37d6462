"""Who may do what in the operator console, and when a person is locked out.

Pure policy (stdlib only): the console's store keeps people, sessions and failures; the web layer
asks these functions and journals every refusal with the reason code they return. Roles are
ordered by trust, but permissions are listed explicitly per action so a reader sees at once that
a viewer can never approve and only an admin manages people or applies rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

ROLES = ("viewer", "risk_officer", "approver", "admin")

# action -> roles allowed to do it
PERMISSIONS: dict[str, frozenset[str]] = {
    "view": frozenset(ROLES),
    "ack": frozenset({"risk_officer", "approver", "admin"}),
    "silence": frozenset({"risk_officer", "approver", "admin"}),
    "propose": frozenset({"risk_officer", "approver", "admin"}),
    "approve": frozenset({"approver", "admin"}),
    "reject": frozenset({"approver", "admin"}),
    "rules_apply": frozenset({"admin"}),
    "people_admin": frozenset({"admin"}),
}
ACTIONS = tuple(PERMISSIONS)


def valid_role(role: str) -> str | None:
    """None when `role` is a console role, else why not (for config and CLI errors)."""
    if role in ROLES:
        return None
    return f"unknown role {role!r}; one of {', '.join(ROLES)}"


def allowed(role: str, action: str) -> bool:
    return role in PERMISSIONS.get(action, frozenset())


def refusal(role: str, action: str) -> str | None:
    """None when allowed, else an upper-case reason code with its detail."""
    if action not in PERMISSIONS:
        return f"UNKNOWN_ACTION: {action!r}"
    if not allowed(role, action):
        return f"FORBIDDEN_ROLE: role {role!r} may not {action}"
    return None


def needs_second_factor(role: str, has_totp: bool) -> bool:
    """Approvers (and admins) who enrolled a TOTP secret must give a code to log in and to
    approve; a viewer or a risk officer never needs one."""
    return has_totp and role in ("approver", "admin")


@dataclass(frozen=True)
class LockoutPolicy:
    """After `max_failures` failed logins within `window_s`, the person is locked `lock_s`."""

    max_failures: int = 5
    window_s: float = 900.0
    lock_s: float = 900.0

    def locked_until(self, failures: Sequence[float], now: float) -> float:
        """The time the lock ends (0.0: not locked) given the failure times on record."""
        recent = sorted(t for t in failures if now - t <= self.window_s)
        if len(recent) < self.max_failures:
            return 0.0
        until = recent[-1] + self.lock_s
        return until if until > now else 0.0

    def keep(self, failures: Sequence[float], now: float) -> list[float]:
        """The failures still worth remembering (inside the window)."""
        return [t for t in failures if now - t <= max(self.window_s, self.lock_s)]


@dataclass(frozen=True)
class SessionPolicy:
    """Sessions end after `idle_s` without a request or `max_s` after login, whichever first."""

    idle_s: float = 1800.0
    max_s: float = 12 * 3600.0

    def expired(self, created: float, last_seen: float, now: float) -> str | None:
        if now - created > self.max_s:
            return "SESSION_EXPIRED: older than the maximum session length"
        if now - last_seen > self.idle_s:
            return "SESSION_EXPIRED: idle too long"
        return None


def four_eyes(proposed_by: str, person: str) -> str | None:
    """The proposer of an action may not approve it."""
    if proposed_by and proposed_by == person:
        return f"FOUR_EYES: {person} proposed this action and may not approve it"
    return None
