"""The console store on a real SQLite file: hashes only, lockout, sessions, tokens, TOTP."""

import sqlite3

import pyotp
import pytest

from app.console.store import ConsoleStore, LoginRefused
from rules.access import LockoutPolicy


def test_password_is_hashed_and_checked_and_locks_after_five_failures(tmp_path):
    store = ConsoleStore(tmp_path / "console.sqlite", lockout=LockoutPolicy(5, 900, 900))
    store.add_person("li", "risk_officer", "correct horse")
    raw = sqlite3.connect(tmp_path / "console.sqlite").execute("SELECT * FROM people").fetchall()
    assert "correct horse" not in repr(raw) and "$argon2" in repr(raw)
    assert store.check_password("li", "correct horse", now=100).role == "risk_officer"
    for i in range(5):
        with pytest.raises(LoginRefused, match="BAD_PASSWORD"):
            store.check_password("li", "wrong", now=200 + i)
    with pytest.raises(LoginRefused, match="LOCKED_OUT"):
        store.check_password("li", "correct horse", now=210)  # even the right one, while locked
    assert store.check_password("li", "correct horse", now=210 + 900).name == "li"
    with pytest.raises(LoginRefused, match="UNKNOWN_PERSON"):
        store.check_password("nobody", "x")
    with pytest.raises(ValueError, match="role"):
        store.add_person("x", "boss", "long enough")


def test_sessions_tokens_roster_and_totp(tmp_path):
    store = ConsoleStore(tmp_path / "c.sqlite")
    person = store.add_person("wang", "approver", "approver pass")
    s = store.open_session(person)
    assert store.session(s.session_id).csrf == s.csrf and s.ref
    store.expire_session(s.session_id, ago_s=7200)
    with pytest.raises(LoginRefused, match="SESSION_EXPIRED"):
        store.session(s.session_id)
    s2 = store.open_session(person)
    store.close_session(s2.session_id)
    with pytest.raises(LoginRefused, match="NO_SESSION"):
        store.session(s2.session_id)
    token = store.issue_token("wang")
    assert store.token_person(token)[0].name == "wang"
    raw = sqlite3.connect(tmp_path / "c.sqlite").execute("SELECT * FROM tokens").fetchall()
    assert token not in repr(raw)
    assert store.revoke_tokens("wang") == 1
    with pytest.raises(LoginRefused, match="BAD_TOKEN"):
        store.token_person(token)
    secret = store.enroll_totp("wang")
    with pytest.raises(LoginRefused, match="TOTP_REQUIRED"):
        store.check_password("wang", "approver pass")
    code = pyotp.TOTP(secret).now()
    assert store.check_password("wang", "approver pass", totp=code).has_totp
    assert store.check_totp("wang", code) and not store.check_totp("wang", "000000")
    # the roster decides roles; someone dropped from it is out
    assert store.sync_roster([{"name": "wang", "role": "admin"}, {"name": "zhao"}]) == ["zhao"]
    assert store.person("wang").role == "admin"
    store.add_person("li", "viewer", "viewer pass")
    store.sync_roster([{"name": "wang", "role": "admin"}])
    assert store.person("li") is None
