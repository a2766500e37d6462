"""AuditLog actor: the single writer of the hash-chained journal.

Callers send lists of records; a writer thread appends whatever has queued every `batch_ms` in
one transaction, so the journal costs one SQLite commit per batch, not per event. What must be
on disk before it is acted on (an outbox: proposals, decisions, orders) goes through `durable`,
which commits before it returns; a restarted actor reads its state back with `query(kinds=…)`.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import ray

from actors.common import ACTOR_OPTIONS
from infra import metrics
from infra.audit import AuditStore


@ray.remote(**ACTOR_OPTIONS)
class AuditLog:
    def __init__(self, path: str, batch_ms: int = 100) -> None:
        self.store = AuditStore(path)
        self.path = path
        self.batch_s = batch_ms / 1000
        self._queue: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()  # one append at a time keeps the chain in order
        self._stop = threading.Event()
        self.appended = 0
        self._m_records = metrics.counter(
            "journal_records_total", "records appended to the journal"
        )
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    def append(self, records: list[dict[str, Any]]) -> int:
        """Queue records; returns how many are queued (they land within batch_ms)."""
        now = time.time()
        with self._lock:
            for rec in records:
                rec.setdefault("ts", now)
                self._queue.append(rec)
            return len(self._queue)

    def _write(self) -> int:
        with self._write_lock:
            with self._lock:
                batch, self._queue = self._queue, []
            if batch:
                self.store.append(batch)
                self.appended += len(batch)
                self._m_records.inc(len(batch), tags={"actor": "AuditLog"})
        return len(batch)

    def _run(self) -> None:
        while not self._stop.wait(self.batch_s):
            self._write()

    def durable(self, records: list[dict[str, Any]]) -> int:
        """Append and commit now (with whatever else queued, in order); returns the last seq."""
        self.append(records)
        return self.flush()

    def flush(self) -> int:
        """Write everything queued now; returns the last sequence number."""
        self._write()
        return self.store.last_seq

    def stats(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "appended": self.appended,
            "last_seq": self.store.last_seq,
            "queued": len(self._queue),
        }

    def query(self, **kwargs: Any) -> list[dict[str, Any]]:
        """AuditStore.query after writing what is queued (kind, kinds, key, ref, since, …)."""
        self._write()
        return self.store.query(**kwargs)

    def verify(self) -> list[dict[str, Any]]:
        self._write()
        return [{"seq": b.seq, "reason": b.reason} for b in self.store.verify()]
