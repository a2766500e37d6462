"""Durable appends batched across senders (issue 13 item 2): many senders call `durable` at
once; each returns only after its records are readable from the SQLite file by a connection of
its own, and the writer committed them in fewer commits than there were calls (group commit)."""

from __future__ import annotations

import sqlite3
import threading

import ray

from actors.audit_log import AuditLog, AuditLogSettings
from actors.common import JournalSender
from infra.audit import AuditStore

SENDERS, CALLS, PER_CALL = 8, 25, 20


def _readable(path: str, refs: list[str]) -> set[str]:
    """The refs another connection (not the writer's) finds committed in the file."""
    conn = sqlite3.connect(path)
    try:
        marks = ",".join("?" * len(refs))
        rows = conn.execute(f"SELECT ref FROM journal WHERE ref IN ({marks})", refs).fetchall()
    finally:
        conn.close()
    return {r[0] for r in rows}


def test_concurrent_durable_senders_return_only_after_their_records_are_committed(
    ray_local, tmp_path
):
    path = str(tmp_path / "journal.sqlite")
    # a batch timer far away: only the durable path can have committed what a caller sees
    log = AuditLog.remote(AuditLogSettings(path=path, batch_ms=600_000))
    ray.get(log.flush.remote())
    missing: list[str] = []
    errors: list[BaseException] = []

    def sender(i: int) -> None:
        journal = JournalSender(f"Sender{i}")
        try:
            for c in range(CALLS):
                refs = [f"s{i}-c{c}-r{k}" for k in range(PER_CALL)]
                kind = "order" if c % 2 else "trade"  # `durable` commits any kind
                ray.get(journal.send(log, [{"kind": kind, "ref": r} for r in refs], durable=True))
                found = _readable(path, refs)
                missing.extend(r for r in refs if r not in found)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=sender, args=(i,)) for i in range(SENDERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and not any(t.is_alive() for t in threads)
    assert missing == []  # every call's records were in the file when it returned
    stats = ray.get(log.stats.remote())
    assert stats["appended"] == SENDERS * CALLS * PER_CALL
    assert stats["commits"] < SENDERS * CALLS  # calls shared commits
    ray.kill(log)
    store = AuditStore(path)
    assert store.count() == SENDERS * CALLS * PER_CALL
    assert store.verify() == []  # every sender's numbers 1..500, none missing or twice
    store.close()


def test_a_durable_kind_sent_by_append_commits_before_the_call_returns(ray_local, tmp_path):
    path = str(tmp_path / "journal.sqlite")
    log = AuditLog.remote(AuditLogSettings(path=path, batch_ms=600_000))
    ray.get(log.append.remote([{"kind": "risk_event", "ref": "queued-1"}]))
    assert _readable(path, ["queued-1"]) == set()  # a QUEUED kind waits for the batch
    ray.get(log.append.remote([{"kind": "alert", "ref": "durable-1"}]))
    assert _readable(path, ["queued-1", "durable-1"]) == {"queued-1", "durable-1"}
    ray.kill(log)


def test_a_copy_of_a_numbered_record_is_not_appended_again(ray_local, tmp_path):
    """A call retried (by Ray after a restart, or by a sender after a timeout) carries records
    already committed: the writer drops the copies, also after it restarts on the same file."""
    path = str(tmp_path / "journal.sqlite")
    journal = JournalSender("Retrier")
    batch = [{"kind": "order", "ref": f"o{k}"} for k in range(5)]
    log = AuditLog.remote(AuditLogSettings(path=path, batch_ms=600_000))
    ray.get(journal.send(log, batch, durable=True))
    ray.get(journal.send(log, batch, durable=True))  # the same records: numbers kept
    ray.kill(log)
    again = AuditLog.remote(AuditLogSettings(path=path, batch_ms=600_000))
    ray.get(journal.send(again, batch, durable=True))
    stats = ray.get(again.stats.remote())
    assert stats["copies_dropped"] == 5
    ray.kill(again)
    store = AuditStore(path)
    assert store.count() == 5 and store.verify() == []
    store.close()
