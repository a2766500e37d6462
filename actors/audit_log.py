"""AuditLog actor: the single writer of the hash-chained journal.

Callers send lists of records. QUEUED kinds (infra.journal_kinds) ride the writer's batch: a
thread appends whatever has queued every `batch_ms` in one transaction. A call that holds a
DURABLE kind — and every `durable`/`flush` — returns only once its records are committed to the
file (group commit): the records of every call that arrives while a commit is in flight join
the next commit, so many senders share one fsync each round instead of paying one each, and
durable throughput stays near the store's own append rate. A restarted actor reads its state
back with `query(kinds=…)`.

The actor is asynchronous (one event loop): a call enqueues its records before its first
`await`, so calls run in the order Ray starts them; commits run on a worker thread, so the loop
keeps taking appends while SQLite syncs. A commit that fails (locked, disk full) raises to the
callers waiting on it — they were not acknowledged — and the records stay queued for the next.

A numbered record (`sender`, `sender_seq`: actors.common.JournalSender) that is already in the
file is dropped, not appended again: Ray retries a call that was in flight when this actor died
(`max_task_retries`), and a sender retries a call that timed out, and either may carry records
that were committed before the reply was lost. The numbers of the last `REMEMBERED` records are
kept (read back from the file at start), so a copy is recognised across a restart.

Senders encode their own records (actors.common.JournalSender: infra.audit_encode.preencode),
so this one process only checks each encoded record's shape, chains and commits: the writer was
CPU-bound on one core (issue 13 item 2). A plain dict record is still taken and encoded here.

Records that carry decisions are written only by the actor that decided (issue 13 item 5): a
decision record must carry the Executor's seal under the deployment's key
(rules.execution.seal); one that does not is refused (PermissionError FORGED_DECISION to the
caller), counted (`forged_refused`) and journaled as a `quarantine` record with the reason; the
rest of its batch lands.
"""

from __future__ import annotations

import asyncio
import collections
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import ray

from actors.common import ACTOR_OPTIONS
from actors.shell import ActorShell
from infra.audit import QUARANTINE, AuditStore
from infra.audit_encode import encoded_fault
from infra.journal_kinds import needs_commit
from rules.execution.seal import unsealed

REMEMBERED = 200_000  # numbered records whose (sender, number) a retried copy is checked against


@dataclass(frozen=True)
class AuditLogSettings:
    path: str  # the SQLite journal file
    batch_ms: int = 100  # queued records are written together at most this often
    seal_key: str = field(default="", repr=False)  # decision records' seal (the Executor's)
    busy_timeout_s: float = 5.0  # a commit waits this long for another process's lock


class JournalWriteFailed(RuntimeError):
    """The commit that would have held a caller's records failed; they stay queued."""


@ray.remote(**ACTOR_OPTIONS)
class AuditLog(ActorShell):
    def __init__(self, settings: AuditLogSettings) -> None:
        super().__init__("AuditLog")
        self.settings = settings
        self.store = AuditStore(settings.path, busy_timeout_s=settings.busy_timeout_s)
        self.path = settings.path
        self._queue: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()  # one append at a time keeps the chain in order
        self._enqueued = 0  # records ever queued: a caller's ticket is the count after its own
        self._committed = 0  # records ever committed (or quarantined): tickets up to it are done
        self._commit: asyncio.Future[Any] | None = None  # the commit in flight, if any
        self.appended = 0
        self.commits = 0
        self._oldest: float | None = None  # when the oldest queued record arrived
        self.lag_ms = 0.0
        numbers = self.store.recent_numbers(REMEMBERED)
        self._numbers: collections.deque[tuple[str, int]] = collections.deque(
            numbers, maxlen=REMEMBERED
        )
        self._known = set(numbers)
        self._m_records = self.metric(
            "counter", "journal_records_total", "records appended to the journal"
        )
        self._m_lag = self.metric(
            "gauge", "journal_lag_ms", "append to commit of the last batch's oldest record"
        )
        self.every(settings.batch_ms / 1000, self._write, "write")

    # ---- messages ------------------------------------------------------------------------------

    async def append(self, records: list[dict[str, Any]]) -> int:
        """Queue records; returns how many are queued (QUEUED kinds land within batch_ms). A
        call with a record of a DURABLE kind returns after the commit that holds it (and all
        queued before it): what others rebuild from is never only in this memory. A decision
        record without the Executor's seal is refused (see the module's docstring)."""
        records, forged = self._screen(records)
        ticket, queued = self._enqueue(records)
        if needs_commit(records) or forged:
            await self._committed_through(ticket)
            self.counts["committed_on_append"] += 1
        if forged:
            raise PermissionError(f"{forged[0]} ({len(forged)} refused)")
        return queued

    async def durable(self, records: list[dict[str, Any]]) -> int:
        """Append and return after the commit that holds them; returns the last seq."""
        records, forged = self._screen(records)
        ticket, _ = self._enqueue(records)
        await self._committed_through(ticket)
        if forged:
            raise PermissionError(f"{forged[0]} ({len(forged)} refused)")
        return self.store.last_seq

    async def flush(self) -> int:
        """Commit everything queued now; returns the last sequence number."""
        await self._committed_through(self._enqueued)
        return self.store.last_seq

    async def query(self, **kwargs: Any) -> list[dict[str, Any]]:
        """AuditStore.query after committing what is queued (kind, kinds, key, ref, since, …)."""
        await self._committed_through(self._enqueued)
        return await asyncio.get_running_loop().run_in_executor(
            None, lambda: self.store.query(**kwargs)
        )

    async def verify(self) -> list[dict[str, Any]]:
        await self._committed_through(self._enqueued)
        breaks = await asyncio.get_running_loop().run_in_executor(None, self.store.verify)
        return [{"seq": b.seq, "reason": b.reason} for b in breaks]

    def figures(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "appended": self.appended,
            "commits": self.commits,
            "last_seq": self.store.last_seq,
            "queued": len(self._queue),
            "lag_ms": self.lag_ms,
            "write_errors": self.counts["write_errors"],
        }

    # ---- group commit --------------------------------------------------------------------------

    def _screen(self, records: list[Any]) -> tuple[list[Any], list[str]]:
        """(records to journal, reasons of the refused): a refused one is replaced by its
        quarantine record, so the journal says who tried what. A record its sender encoded
        (a tuple: infra.audit_encode.preencode) is checked for its shape and kind; one that
        fails is quarantined with the reason (a sealed kind never travels encoded)."""
        out: list[Any] = []
        forged: list[str] = []
        for rec in records:
            if type(rec) is tuple:
                fault = encoded_fault(rec)
                if fault is None:
                    out.append(rec)
                    continue
                self.counts["malformed_encoded"] += 1
                self.reject("MALFORMED_ENCODED", fault)
                head = [str(f)[:200] for f in rec[1:5]] + [""] * 4
                out.append(
                    {"kind": QUARANTINE, "actor": "AuditLog", "key": head[2], "ref": head[3],
                     "reason": fault, "record_kind": head[0][:100], "claimed_actor": head[1]}
                )  # fmt: skip
                continue
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

    def _enqueue(self, records: list[dict[str, Any]]) -> tuple[int, int]:
        now = time.time()
        with self._lock:
            if self._oldest is None and records:
                self._oldest = now
            for rec in records:
                if type(rec) is dict:  # an encoded record without ts is stamped on append
                    rec.setdefault("ts", now)
            self._queue.extend(records)
            self._enqueued += len(records)
            return self._enqueued, len(self._queue)

    async def _committed_through(self, ticket: int) -> None:
        """Wait until every record up to `ticket` is committed. One commit runs at a time;
        whoever finds none in flight starts the next, which takes everything queued by then."""
        loop = asyncio.get_running_loop()
        while self._committed < ticket:
            if self._commit is None or self._commit.done():
                self._commit = loop.run_in_executor(None, self._write)
            commit = self._commit
            done = await asyncio.shield(commit)
            if done < 0 and self._committed < ticket:
                raise JournalWriteFailed(f"journal commit failed: {self.last_error}")

    def _write(self) -> int:
        """Commit what is queued; returns how many records, or -1 when the commit failed."""
        with self._write_lock:
            with self._lock:
                batch, self._queue = self._queue, []
                oldest, self._oldest = self._oldest, None
                upto = self._enqueued
            if not batch:
                return 0
            bad = [r for r in batch if type(r) is not tuple and not _has_kind(r)]
            for r in bad:  # a malformed record is quarantined with its reason; the rest lands
                self.reject("NO_KIND", repr(r)[:500])
            if bad:
                batch = [r for r in batch if type(r) is tuple or _has_kind(r)]
            batch, numbers = self._fresh(batch)
            try:
                self._append_split(batch)
            except sqlite3.Error as exc:  # locked, disk full: keep the batch, try next round
                with self._lock:
                    self._queue[:0] = batch
                    if oldest is not None:
                        self._oldest = min(oldest, self._oldest or oldest)
                self.failed("write", exc)
                return -1
            self._committed = upto
            self._remember(numbers)
            self.commits += 1
            self.appended += len(batch)
            if batch:
                self._m_records.inc(len(batch), tags={"actor": "AuditLog"})
            if oldest is not None:
                self.lag_ms = (time.time() - oldest) * 1000
                self._m_lag.set(self.lag_ms, tags={"actor": "AuditLog"})
        return len(batch)

    def _fresh(
        self, batch: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], list[tuple[str, int]]]:
        """The batch less numbered records already journaled (or twice in it), and the numbers
        of those it keeps."""
        fresh, numbers, seen = [], [], set()
        for rec in batch:
            if type(rec) is tuple:  # encoded by its sender: checked by _screen
                number = (rec[6], rec[7]) if rec[6] else None
            elif "sender_seq" in rec:
                try:
                    number = (str(rec["sender"]), int(rec["sender_seq"]))
                except (KeyError, TypeError, ValueError):
                    number = None
            else:
                number = None
            if number is not None:
                if number in self._known or number in seen:
                    self.counts["copies_dropped"] += 1
                    continue
                seen.add(number)
                numbers.append(number)
            fresh.append(rec)
        return fresh, numbers

    def _remember(self, numbers: list[tuple[str, int]]) -> None:
        for number in numbers:
            if len(self._numbers) == self._numbers.maxlen:
                self._known.discard(self._numbers[0])
            self._numbers.append(number)
            self._known.add(number)

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
            if type(rec) is tuple:  # encoded: its fields by name, for the quarantine record
                rec = {"kind": rec[1], "key": rec[3], "ref": rec[4]}
            reason = f"{type(exc).__name__}: {exc}"[:300]
            self.reject("UNWRITABLE", reason)
            self.store.append(
                [{"kind": QUARANTINE, "actor": "AuditLog", "key": str(rec.get("key", ""))[:200],
                  "ref": str(rec.get("ref", ""))[:200], "reason": reason,
                  "record_kind": str(rec.get("kind", ""))[:100]}]
            )  # fmt: skip


def _has_kind(rec: Any) -> bool:
    return isinstance(rec, dict) and "kind" in rec
