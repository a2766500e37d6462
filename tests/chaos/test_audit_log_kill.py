"""kill -9 of the AuditLog mid-write (issue 13 item 9): durable senders keep calling while the
writer's process dies with commits in flight. Exactly once on journal records: every record a
sender was told is committed is in the file, none is in it twice (a call Ray retried on the
restarted actor, or a sender retried, brings copies the writer drops), and fire-and-forget
records the dead writer held in memory are named by `audit verify` as a sender's gap, never
silently missing."""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter

import pytest
import ray

from actors.audit_log import AuditLog, AuditLogSettings
from actors.common import JournalSender
from infra.audit import AuditStore
from tests.chaos.kill import kill_when, wait_restarted


def _file_count(path: str) -> int:
    conn = sqlite3.connect(path)  # another connection: what is committed, not what is queued
    try:
        return conn.execute("SELECT count(*) FROM journal").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


def _run(tmp_path, senders: int, calls: int, per_call: int, kills: int) -> None:
    path = str(tmp_path / "journal.sqlite")
    log = AuditLog.options(max_restarts=kills + 1).remote(AuditLogSettings(path=path, batch_ms=200))
    ray.get(log.flush.remote())
    acknowledged: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def durable_sender(i: int) -> None:
        journal = JournalSender(f"Durable{i}")
        try:
            for c in range(calls):
                batch = [{"kind": "order", "ref": f"d{i}-{c}-{k}"} for k in range(per_call)]
                while True:  # a call that failed with the writer is sent again, numbers kept
                    try:
                        ray.get(journal.send(log, batch, durable=True), timeout=60)
                        break
                    except ray.exceptions.RayError:
                        continue
                with lock:
                    acknowledged.extend(r["ref"] for r in batch)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    queued = JournalSender("Queued")

    def queued_sender() -> None:  # fire-and-forget observations, then one durable record
        for c in range(calls):
            queued.send(log, [{"kind": "risk_event", "ref": f"q-{c}-{k}"} for k in range(5)])
        while True:
            try:
                ray.get(queued.send(log, [{"kind": "alert", "ref": "q-last"}], durable=True))
                return
            except ray.exceptions.RayError:
                continue

    threads = [threading.Thread(target=durable_sender, args=(i,)) for i in range(senders)]
    threads.append(threading.Thread(target=queued_sender))
    for t in threads:
        t.start()
    total = senders * calls * per_call
    for k in range(kills):  # each kill when the file holds another share of the records
        target = total * (k + 1) // (kills + 2)
        old = kill_when(log, lambda target=target: _file_count(path) >= target, timeout=120)
        wait_restarted(log, old)
    for t in threads:
        t.join(timeout=180)
    assert not errors and not any(t.is_alive() for t in threads)

    store = AuditStore(path)
    rows = store.query()
    refs = Counter(r["ref"] for r in rows)
    assert [r for r in acknowledged if refs[r] != 1] == []  # each committed record once
    assert len(acknowledged) == total
    assert {r: n for r, n in refs.items() if n > 1} == {}  # nothing twice, queued ones too
    # What the writer lost of the fire-and-forget sender is named, number by number.
    landed = {r["sender_seq"] for r in rows if r.get("sender") == queued.sender}
    lost = set(range(1, queued.last + 1)) - landed
    named = set()
    for b in store.verify():
        assert b.reason.startswith(f"sender {queued.sender}:"), b.reason  # no other break
        span = b.reason.split(": record")[1].split(" sent")[0].strip("s ")
        lo, _, hi = span.partition("..")
        named |= set(range(int(lo), int(hi or lo) + 1))
    assert named == lost
    store.close()
    ray.kill(log, no_restart=True)


def test_audit_log_killed_mid_write_loses_and_doubles_nothing_acknowledged(ray_local, tmp_path):
    _run(tmp_path, senders=4, calls=30, per_call=10, kills=1)


@pytest.mark.chaos
def test_audit_log_killed_three_times_under_load(ray_local, tmp_path):
    _run(tmp_path, senders=8, calls=150, per_call=20, kills=3)
