"""AuditLog actor: the single writer of the hash-chained journal.

Callers send lists of records; a writer thread appends whatever has queued every `batch_ms` in
one transaction, so the journal costs one SQLite commit per batch, not per event. What must be
on disk before it is acted on (an outbox: proposals, decisions, orders) goes through `durable`,
which commits before it returns; a restarted actor reads its state back with `query(kinds=…)`.

Records that carry decisions are written only by the actor that decided (issue 13 item 5): a
decision record must carry the Executor's seal under the deployment's key
(rules.execution.seal); one that does not is refused (PermissionError FORGED_DECISION to the
caller), counted (`forged_refused`) and journaled as a `quarantine` record with the reason; the
rest of its batch lands.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import ray

from actors.common import ACTOR_OPTIONS
from actors.shell import ActorShell
from infra.audit import QUARANTINE, AuditStore
from infra.journal_kinds import needs_commit
from rules.execution.seal import unsealed


@dataclass(frozen=True)
class AuditLogSettings:
    path: str  # the SQLite journal file
    batch_ms: int = 100  # queued records are written together at most this often
    seal_key: str = field(default="", repr=False)  # decision records' seal (the Executor's)


@ray.remote(**ACTOR_OPTIONS)
class AuditLog(ActorShell):
    def __init__(self, settings: AuditLogSettings) -> None:
        super().__init__("AuditLog")
        self.settings = settings
        self.store = AuditStore(settings.path)
        self.path = settings.path
        self._queue: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()  # one append at a time keeps the chain in order
        self.appended = 0
        self._oldest: float | None = None  # when the oldest queued record arrived
        self.lag_ms = 0.0
        self._m_records = self.metric(
            "counter", "journal_records_total", "records appended to the journal"
        )
        self._m_lag = self.metric(
            "gauge", "journal_lag_ms", "append to commit of the last batch's oldest record"
        )
        self.every(settings.batch_ms / 1000, self._write, "write")

    def append(self, records: list[dict[str, Any]]) -> int:
        """Queue records; returns how many are queued (they land within batch_ms). A batch with
        a record of a DURABLE kind (infra.journal_kinds) is committed, with all queued before
        it, before this returns: what others rebuild from is never only in this memory. A
        decision record without the Executor's seal is refused (see the module's docstring)."""
        records, forged = self._screen(records)
        now = time.time()
        with self._lock:
            if self._oldest is None and records:
                self._oldest = now
            for rec in records:
                if isinstance(rec, dict):
                    rec.setdefault("ts", now)
                self._queue.append(rec)
            queued = len(self._queue)
        if needs_commit(records):
            self._write()
            self.counts["committed_on_append"] += 1
        if forged:
            raise PermissionError(f"{forged[0]} ({len(forged)} refused)")
        return queued

    def _screen(self, records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
        """(records to journal, reasons of the refused): a refused one is replaced by its
        quarantine record, so the journal says who tried what."""
        out: list[dict[str, Any]] = []
        forged: list[str] = []
        for rec in records:
            why = unsealed(rec, self.settings.seal_key) if isinstance(rec, dict) else None
            if why is None:
                out.append(rec)
                continue
            forged.append(why)
            self.counts["forged_refused"] += 1
            self.reject("FORGED_DECISION", why)
            out.append(
                {"kind": QUARANTINE, "actor": "AuditLog", "key": str(rec.get("key", ""))[:200],
                 "ref": str(rec.get("ref", ""))[:200], "reason": why,
                 "record_kind": str(rec.get("kind", ""))[:100],
                 "claimed_actor": str(rec.get("actor", ""))[:100]}
            )  # fmt: skip
        return out, forged

    def _write(self) -> int:
        with self._write_lock:
            with self._lock:
                batch, self._queue = self._queue, []
                oldest, self._oldest = self._oldest, None
            if not batch:
                return 0
            bad = [r for r in batch if not isinstance(r, dict) or "kind" not in r]
            for r in bad:  # a malformed record is quarantined with its reason; the rest lands
                self.reject("NO_KIND", repr(r)[:500])
            if bad:
                batch = [r for r in batch if isinstance(r, dict) and "kind" in r]
            try:
                self._append_split(batch)
            except sqlite3.Error as exc:  # locked, disk full: keep the batch, try next round
                with self._lock:
                    self._queue[:0] = batch
                    if oldest is not None:
                        self._oldest = min(oldest, self._oldest or oldest)
                self.failed("write", exc)
                return 0
            self.appended += len(batch)
            if batch:
                self._m_records.inc(len(batch), tags={"actor": "AuditLog"})
            if oldest is not None:
                self.lag_ms = (time.time() - oldest) * 1000
                self._m_lag.set(self.lag_ms, tags={"actor": "AuditLog"})
        return len(batch)

    def _append_split(self, batch: list[dict[str, Any]]) -> None:
        """Append a batch; one that fails for anything but SQLite is split in halves until the
        record at fault stands alone, and that one is journaled as a `quarantine` record with
        the reason, so nothing else of the batch is lost."""
        try:
            self.store.append(batch)
        except sqlite3.Error:
            raise
        except Exception as exc:
            if len(batch) > 1:
                half = len(batch) // 2
                self._append_split(batch[:half])
                self._append_split(batch[half:])
                return
            rec = batch[0]
            reason = f"{type(exc).__name__}: {exc}"[:300]
            self.reject("UNWRITABLE", reason)
            self.store.append(
                [{"kind": QUARANTINE, "actor": "AuditLog", "key": str(rec.get("key", ""))[:200],
                  "ref": str(rec.get("ref", ""))[:200], "reason": reason,
                  "record_kind": str(rec.get("kind", ""))[:100]}]
            )  # fmt: skip

    def durable(self, records: list[dict[str, Any]]) -> int:
        """Append and commit now (with whatever else queued, in order); returns the last seq."""
        self.append(records)
        return self.flush()

    def flush(self) -> int:
        """Write everything queued now; returns the last sequence number."""
        self._write()
        return self.store.last_seq

    def figures(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "appended": self.appended,
            "last_seq": self.store.last_seq,
            "queued": len(self._queue),
            "lag_ms": self.lag_ms,
            "write_errors": self.counts["write_errors"],
        }

    def query(self, **kwargs: Any) -> list[dict[str, Any]]:
        """AuditStore.query after writing what is queued (kind, kinds, key, ref, since, …)."""
        self._write()
        return self.store.query(**kwargs)

    def verify(self) -> list[dict[str, Any]]:
        self._write()
        return [{"seq": b.seq, "reason": b.reason} for b in self.store.verify()]
