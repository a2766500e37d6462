"""The writer's WAL checkpoints run off its commit path (issue 13 item 2).

With `checkpoints=True` SQLite's automatic checkpoint is off and a thread of the store copies
the WAL into the file on a connection of its own: the WAL is backfilled while the writer goes on,
what was committed reads back, and a store opened later (the CLI's) sees every record.
"""

from __future__ import annotations

import time

from infra.audit import AuditStore


def _until(condition, deadline_s: float = 20.0) -> bool:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_checkpoints_run_on_their_own_thread_and_backfill_the_wal(tmp_path):
    path = tmp_path / "journal.sqlite"
    store = AuditStore(path, checkpoints=True)
    try:
        assert store.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        for i in range(20):
            store.append([{"kind": "trade", "key": f"A{j}", "n": i, "pad": "x" * 200}
                          for j in range(500)])  # fmt: skip
        wal = path.with_name(path.name + "-wal")
        assert wal.stat().st_size > 1 << 20  # the WAL holds the commits (no auto checkpoint)
        # only a checkpoint writes pages into the file itself: the thread's did
        assert _until(lambda: store.checkpoints >= 1 and path.stat().st_size > 1 << 20)
        assert store.count() == 10_000 and store.verify() == []
    finally:
        store.close()
    reopened = AuditStore(path)
    assert reopened.count() == 10_000 and reopened.last_seq == 10_000
    assert reopened.verify() == []
