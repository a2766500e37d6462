"""[audit] busy_timeout_s: how long a commit waits for another process's lock on the journal."""

from __future__ import annotations

import sqlite3

import pytest

from infra import config
from infra.audit import AuditStore
from infra.config.errors import ConfigError


def test_the_default_and_a_bad_value_named_by_its_key():
    assert config.from_dict({}, source="<t>").audit.busy_timeout_s == 5.0
    for bad in (0, -1, 601):
        with pytest.raises(ConfigError, match=r"audit\.busy_timeout_s: must be more than 0"):
            config.from_dict({"audit": {"busy_timeout_s": bad}}, source="<t>")


def test_a_locked_journal_fails_a_commit_then_takes_it_once_free(tmp_path):
    path = tmp_path / "journal.sqlite"
    store = AuditStore(path, busy_timeout_s=0.3)
    assert store.db.execute("PRAGMA busy_timeout").fetchone()[0] == 300  # SQLite's own figure
    lock = sqlite3.connect(str(path), timeout=0)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            store.append([{"kind": "k", "actor": "a", "key": "x", "ref": "r", "payload": {}}])
    finally:
        lock.rollback()
        lock.close()
    store.append([{"kind": "k", "actor": "a", "key": "x", "ref": "r", "payload": {}}])
    assert len(store.query(kind="k")) == 1
    store.close()
