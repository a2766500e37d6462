"""The console's own records: people, sessions and API tokens in one SQLite file.

Passwords are kept only as argon2 hashes (argon2-cffi); session ids and API tokens only as their
SHA-256 (they are long random strings, so a plain hash is enough and lets a lookup be an index
hit). A stolen copy of this file therefore logs nobody in. TOTP secrets are stored as given
(pyotp needs them to check a code); the file lives under var/, outside the repository.

What a person did is journaled in the AuditLog, not here: this file only says who may log in.
"""

from __future__ import annotations

import functools
import hashlib
import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyotp
import sqlite_utils
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from rules.access import LockoutPolicy, SessionPolicy, valid_role

_HASHER = PasswordHasher()


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Person:
    name: str
    role: str
    has_totp: bool


@dataclass(frozen=True)
class Session:
    session_id: str  # the cookie value; only its digest is stored
    ref: str  # the digest's head: what the journal names the session by
    name: str
    role: str
    csrf: str
    created: float


def _locked(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(self: ConsoleStore, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return fn(self, *args, **kwargs)

    return wrapper


class LoginRefused(Exception):
    """A login, session or token check failed; the message starts with the reason code."""


class ConsoleStore:
    def __init__(
        self,
        path: str | Path,
        lockout: LockoutPolicy | None = None,
        sessions: SessionPolicy | None = None,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection shared by the web server's threads, one call at a time.
        self._lock = threading.RLock()
        conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=10)
        self.db = sqlite_utils.Database(conn)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.lockout = lockout or LockoutPolicy()
        self.session_policy = sessions or SessionPolicy()
        self.db["people"].create(
            {"name": str, "role": str, "password_hash": str, "totp_secret": str,
             "failures": str, "locked_until": float, "created": float},
            pk="name", if_not_exists=True,
        )  # fmt: skip
        self.db["sessions"].create(
            {"digest": str, "name": str, "csrf": str, "created": float, "last_seen": float,
             "revoked": int},
            pk="digest", if_not_exists=True,
        )  # fmt: skip
        self.db["tokens"].create(
            {"digest": str, "name": str, "label": str, "created": float, "revoked": int},
            pk="digest", if_not_exists=True,
        )  # fmt: skip

    def close(self) -> None:
        self.db.close()

    # ---- people --------------------------------------------------------------------------------

    @_locked
    def add_person(self, name: str, role: str, password: str, totp_secret: str = "") -> Person:
        """Create or replace a person (a new password resets their failures and lock)."""
        why = valid_role(role)
        if why:
            raise ValueError(why)
        if not name or len(password) < 8:
            raise ValueError("a person needs a name and a password of at least 8 characters")
        self.db["people"].upsert(
            {"name": name, "role": role, "password_hash": _HASHER.hash(password),
             "totp_secret": totp_secret, "failures": "[]", "locked_until": 0.0,
             "created": time.time()},
            pk="name",
        )  # fmt: skip
        return Person(name, role, bool(totp_secret))

    @_locked
    def enroll_totp(self, name: str) -> str:
        """A fresh TOTP secret for a person (shown once to put in their authenticator app)."""
        secret = pyotp.random_base32()
        self.db["people"].update(name, {"totp_secret": secret})
        return secret

    @_locked
    def sync_roster(self, roster: list[dict[str, Any]]) -> list[str]:
        """Roles follow the [[people]] roster; a person dropped from it can no longer log in.
        Returns the roster names that have no password yet (`fengkong people add`)."""
        names = {p["name"]: p.get("role", "viewer") for p in roster}
        missing = []
        for name, role in names.items():
            if valid_role(role):
                raise ValueError(f"people ({name}).role: {valid_role(role)}")
            row = self._row(name)
            if row is None:
                missing.append(name)
            elif row["role"] != role:
                self.db["people"].update(name, {"role": role})
        if names:
            for row in list(self.db["people"].rows):
                if row["name"] not in names and row["role"] != "disabled":
                    self.db["people"].update(row["name"], {"role": "disabled"})
        return missing

    @_locked
    def person(self, name: str) -> Person | None:
        row = self._row(name)
        if row is None or row["role"] == "disabled":
            return None
        return Person(row["name"], row["role"], bool(row["totp_secret"]))

    def _row(self, name: str) -> dict[str, Any] | None:
        rows = list(self.db["people"].rows_where("name = ?", [name]))
        return rows[0] if rows else None

    @_locked
    def people(self) -> list[Person]:
        return [
            Person(r["name"], r["role"], bool(r["totp_secret"]))
            for r in self.db["people"].rows
            if r["role"] != "disabled"
        ]

    # ---- login ---------------------------------------------------------------------------------

    @_locked
    def check_password(
        self, name: str, password: str, totp: str = "", now: float | None = None
    ) -> Person:
        """The person, or LoginRefused (UNKNOWN_PERSON, LOCKED_OUT, BAD_PASSWORD, TOTP_...).
        Every failure counts towards the lockout, including a wrong second factor."""
        now = time.time() if now is None else now
        row = self._row(name)
        if row is None or row["role"] == "disabled":
            raise LoginRefused(f"UNKNOWN_PERSON: no console account {name!r}")
        if row["locked_until"] and row["locked_until"] > now:
            raise LoginRefused(
                f"LOCKED_OUT: {name} is locked for {row['locked_until'] - now:.0f} s"
            )
        try:
            _HASHER.verify(row["password_hash"], password)
        except (VerificationError, InvalidHashError):
            self._fail(row, now)
            raise LoginRefused("BAD_PASSWORD: wrong password") from None
        if row["totp_secret"] and row["role"] in ("approver", "admin"):
            if not totp:
                raise LoginRefused("TOTP_REQUIRED: a one-time code is needed")
            if not pyotp.TOTP(row["totp_secret"]).verify(totp, valid_window=1):
                self._fail(row, now)
                raise LoginRefused("BAD_TOTP: wrong one-time code")
        self.db["people"].update(name, {"failures": "[]", "locked_until": 0.0})
        return Person(row["name"], row["role"], bool(row["totp_secret"]))

    @_locked
    def check_totp(self, name: str, code: str) -> bool:
        """Re-entering the second factor before an approval (no TOTP enrolled: nothing asked)."""
        row = self._row(name)
        if row is None or not row["totp_secret"]:
            return True
        return bool(code) and pyotp.TOTP(row["totp_secret"]).verify(code, valid_window=1)

    def _fail(self, row: dict[str, Any], now: float) -> None:
        failures = self.lockout.keep([*json.loads(row["failures"] or "[]"), now], now)
        until = self.lockout.locked_until(failures, now)
        self.db["people"].update(
            row["name"], {"failures": json.dumps(failures), "locked_until": until}
        )

    # ---- sessions ------------------------------------------------------------------------------

    @_locked
    def open_session(self, person: Person, now: float | None = None) -> Session:
        now = time.time() if now is None else now
        sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        digest = _digest(sid)
        self.db["sessions"].insert(
            {"digest": digest, "name": person.name, "csrf": csrf, "created": now,
             "last_seen": now, "revoked": 0}
        )  # fmt: skip
        return Session(sid, digest[:12], person.name, person.role, csrf, now)

    @_locked
    def session(self, session_id: str, now: float | None = None) -> Session:
        """The live session behind a cookie (touched), or LoginRefused with why not."""
        now = time.time() if now is None else now
        if not session_id:
            raise LoginRefused("NO_SESSION: not logged in")
        digest = _digest(session_id)
        rows = list(self.db["sessions"].rows_where("digest = ?", [digest]))
        if not rows or rows[0]["revoked"]:
            raise LoginRefused("NO_SESSION: unknown or logged-out session")
        row = rows[0]
        why = self.session_policy.expired(row["created"], row["last_seen"], now)
        if why:
            raise LoginRefused(why)
        person = self.person(row["name"])
        if person is None:
            raise LoginRefused(f"UNKNOWN_PERSON: {row['name']} is no longer on the roster")
        self.db["sessions"].update(digest, {"last_seen": now})
        return Session(
            session_id, digest[:12], person.name, person.role, row["csrf"], row["created"]
        )

    @_locked
    def expire_session(self, session_id: str, ago_s: float) -> None:
        """Backdate a session (operators: force re-login; tests: an expired session)."""
        digest = _digest(session_id)
        self.db["sessions"].update(
            digest, {"created": time.time() - ago_s, "last_seen": time.time() - ago_s}
        )

    @_locked
    def close_session(self, session_id: str) -> None:
        digest = _digest(session_id)
        if list(self.db["sessions"].rows_where("digest = ?", [digest])):
            self.db["sessions"].update(digest, {"revoked": 1})

    # ---- API tokens ----------------------------------------------------------------------------

    @_locked
    def issue_token(self, name: str, label: str = "cli") -> str:
        """A new API token for a person (shown once; only its digest is kept)."""
        if self.person(name) is None:
            raise ValueError(f"no console account {name!r}")
        token = "fk_" + secrets.token_urlsafe(32)
        self.db["tokens"].insert(
            {"digest": _digest(token), "name": name, "label": label, "created": time.time(),
             "revoked": 0}
        )  # fmt: skip
        return token

    @_locked
    def token_person(self, token: str) -> tuple[Person, str]:
        """(person, token ref) for a bearer token, or LoginRefused."""
        digest = _digest(token)
        rows = list(self.db["tokens"].rows_where("digest = ? AND revoked = 0", [digest]))
        person = self.person(rows[0]["name"]) if rows else None
        if person is None:
            raise LoginRefused("BAD_TOKEN: unknown or revoked API token")
        return person, "tok:" + digest[:12]

    @_locked
    def revoke_tokens(self, name: str) -> int:
        rows = list(self.db["tokens"].rows_where("name = ? AND revoked = 0", [name]))
        for r in rows:
            self.db["tokens"].update(r["digest"], {"revoked": 1})
        return len(rows)
