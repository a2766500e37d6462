"""Append-only, hash-chained journal in SQLite (through sqlite-utils).

One writer (the AuditLog actor) appends in batches inside one transaction; WAL lets the CLI and
reports read while it writes. Each record carries the hash of the one before, so an edited,
deleted or reordered row breaks the chain at a place `verify` can name. Searches by account,
kind and time answer from indexes (key, kind, ts), never by scanning payloads.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from infra.audit_encode import QUARANTINE, _encode, _envelope, _insert, record_hash
from infra.journal_numbers import SenderSeqs, stamp

__all__ = ["QUARANTINE", "AuditStore", "ChainBreak", "_envelope", "record_hash", "stamp"]

GENESIS = "0" * 64
TABLE = "journal"
COLUMNS = "seq, ts, kind, actor, key, ref, payload"
# Created when missing, so journals written by older versions gain them on open. Each index costs
# appends (at a million records a (key, kind, ts) index halved the rate); an account's records in
# a time range are few, so (key, ts) then a filter on kind answers "account A, kind K" as well.
# There is no index on ts alone (issue 13 item 2: without it the store appends ~25% faster): a
# question by time only asks (kind, ts) once per kind in the journal (`time_clause`); a journal
# that has the old idx_journal_ts keeps it.
INDEXES = (
    ("idx_journal_kind_ts", "kind, ts"),
    ("idx_journal_key_ts", "key, ts"),
    ("idx_journal_ref", "ref"),
)
CACHE_KIB = 65_536  # SQLite page cache: random-key index pages stay in memory as the file grows


@dataclass(frozen=True, slots=True)
class ChainBreak:
    seq: int
    reason: str


def kind_clause(kind: str) -> tuple[str, list[Any]]:
    """`kind` exactly, or every kind under a prefix with "notification.*" (still indexed)."""
    if kind.endswith("*"):
        prefix = kind[:-1]
        return "kind >= ? AND kind < ?", [prefix, prefix + "\uffff"]
    return "kind = ?", [kind]


class AuditStore:
    """The journal file. Not thread-safe for writers: one writer per file."""

    def __init__(
        self, path: str | Path, synchronous: str = "FULL", busy_timeout_s: float = 5.0
    ) -> None:
        """`synchronous=FULL`: a committed record survives power loss (WAL fsync per batch);
        `busy_timeout_s`: how long a statement waits for another connection's lock."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection shared by the actor's threads, serialised by a lock.
        self._lock = threading.RLock()
        self.db = sqlite_utils.Database(
            sqlite3.connect(str(self.path), timeout=busy_timeout_s, check_same_thread=False)
        )
        self.db.enable_wal()
        self.db.execute(f"PRAGMA synchronous={synchronous}")
        self.db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        if TABLE not in self.db.table_names():
            self.db[TABLE].create(
                {
                    "seq": int,
                    "ts": float,
                    "kind": str,
                    "actor": str,
                    "key": str,
                    "ref": str,
                    "payload": str,
                    "prev_hash": str,
                    "hash": str,
                },
                pk="seq",
            )
        for name, cols in INDEXES:
            self.db.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {TABLE} ({cols})")
        last = self.db.execute(
            f"SELECT seq, hash FROM {TABLE} ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        self._seq, self._hash = (last[0], last[1]) if last else (0, GENESIS)

    @property
    def last_seq(self) -> int:
        return self._seq

    @property
    def last_hash(self) -> str:
        return self._hash

    def append(self, records: Iterable[dict[str, Any] | tuple]) -> int:
        """Append records {kind, actor?, key?, ref?, ts?, payload...}, or records their sender
        encoded (infra.audit_encode.preencode, checked by the writer); returns the last seq."""
        rows = []
        seq, prev = self._seq, self._hash
        now = time.time()
        sha = hashlib.sha256
        for rec in records:
            if type(rec) is tuple:
                ts, kind, actor, key, ref, payload = rec[:6]
                if ts is None:
                    ts = now
            else:
                ts, kind, actor, key, ref, payload = _encode(rec, now)
            seq += 1
            digest = sha(_envelope(prev, seq, ts, kind, actor, key, ref, payload)).hexdigest()
            rows.append((seq, ts, kind, actor, key, ref, payload, prev, digest))
            prev = digest
        if rows:
            with self._lock, self.db.conn:
                _insert(self.db.conn, TABLE, rows)
            self._seq, self._hash = seq, prev
        return self._seq

    def query(
        self,
        kind: str | None = None,
        key: str | None = None,
        ref: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int | None = None,
        kinds: Sequence[str] | None = None,
        actor: str | None = None,
        after_seq: int | None = None,
    ) -> list[dict[str, Any]]:
        """Records in journal order. `kind` may end in "*" (a prefix); `kinds` is any of several."""
        where, params = [], []
        if kind is not None:
            clause, values = kind_clause(kind)
            where.append(clause)
            params += values
        if (
            kind is None
            and not kinds
            and key is None
            and ref is None
            and (since is not None or until is not None)
        ):
            kinds = self.kinds()  # by time only: through (kind, ts), one range per kind
            if not kinds:
                return []
        if kinds:
            where.append(f"kind IN ({','.join('?' * len(kinds))})")
            params += list(kinds)
        for column, value in (("key", key), ("ref", ref), ("actor", actor)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if since is not None:
            where.append("ts >= ?")
            params.append(since)
        if until is not None:
            where.append("ts <= ?")
            params.append(until)
        if after_seq is not None:
            where.append("seq > ?")
            params.append(after_seq)
        sql = f"SELECT {COLUMNS} FROM {TABLE}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY seq"
        if limit:
            sql += f" LIMIT {int(limit)}"
        with self._lock:
            fetched = self.db.execute(sql, params).fetchall()
        return [_row(r) for r in fetched]

    def search(
        self,
        account: str | None = None,
        since: float | None = None,
        until: float | None = None,
        kind: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """The auditor's question: what happened to account A between T1 and T2 (of kind K)."""
        return self.query(kind=kind, key=account, since=since, until=until, limit=limit)

    def count(self, kind: str | None = None) -> int:
        with self._lock:
            if kind is None:
                return self.db.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]
            clause, values = kind_clause(kind)
            return self.db.execute(
                f"SELECT count(*) FROM {TABLE} WHERE {clause}", values
            ).fetchone()[0]

    def kinds(self) -> list[str]:
        """Every kind in the journal, one seek of idx_journal_kind_ts each (never a scan)."""
        found: list[str] = []
        with self._lock:
            row = self.db.execute(f"SELECT min(kind) FROM {TABLE}").fetchone()
            while row[0] is not None:
                found.append(row[0])
                row = self.db.execute(
                    f"SELECT min(kind) FROM {TABLE} WHERE kind > ?", [row[0]]
                ).fetchone()
        return found

    def time_clause(
        self, since: float, until: float, until_op: str = "<="
    ) -> tuple[str, list[Any]] | None:
        """A WHERE clause for the records stamped in [since, until] (`until_op` "<" for a half
        open day) that answers from idx_journal_kind_ts, one range per kind; None when the
        journal is empty."""
        kinds = self.kinds()
        if not kinds:
            return None
        marks = ",".join("?" * len(kinds))
        return f"kind IN ({marks}) AND ts >= ? AND ts {until_op} ?", [*kinds, since, until]

    def counts_by_kind(
        self, since: float | None = None, until: float | None = None
    ) -> dict[str, int]:
        sql, params = f"SELECT kind, count(*) FROM {TABLE}", []
        if since is not None or until is not None:
            clause = self.time_clause(since if since is not None else -math.inf, until or math.inf)
            if clause is None:
                return {}
            sql += " WHERE " + clause[0]
            params = clause[1]
        with self._lock:
            return dict(self.db.execute(sql + " GROUP BY kind", params).fetchall())

    def seq_range(self, since: float, until: float) -> tuple[int, int] | None:
        """First and last seq of the records stamped within [since, until]."""
        clause = self.time_clause(since, until)
        if clause is None:
            return None
        with self._lock:
            lo, hi = self.db.execute(
                f"SELECT min(seq), max(seq) FROM {TABLE} WHERE {clause[0]}", clause[1]
            ).fetchone()
        return None if lo is None else (lo, hi)

    def iter_rows(self, first_seq: int = 1, last_seq: int | None = None) -> Iterator[tuple]:
        sql = f"SELECT {COLUMNS}, prev_hash, hash FROM {TABLE} WHERE seq >= ?"
        params: list[Any] = [first_seq]
        if last_seq is not None:
            sql += " AND seq <= ?"
            params.append(last_seq)
        cursor = self.db.conn.cursor()
        cursor.execute(sql + " ORDER BY seq", params)
        while True:
            chunk = cursor.fetchmany(10_000)
            if not chunk:
                return
            yield from chunk

    def verify(
        self,
        first_seq: int = 1,
        last_seq: int | None = None,
        anchor: tuple[int, str] | None = None,
    ) -> list[ChainBreak]:
        """Walk the chain; every break names the record where it shows and what it means.

        From `first_seq` > 1 the walk trusts that record's prev_hash (a range check, e.g. one
        day); `anchor` (seq, hash) taken earlier (an archive manifest) also catches records
        deleted from the end, which a chain alone cannot see."""
        breaks: list[ChainBreak] = []
        senders = SenderSeqs(from_start=first_seq == 1)
        expected_seq, prev = first_seq, None if first_seq > 1 else GENESIS
        sha = hashlib.sha256
        last_good: tuple[int, str] | None = None
        for seq, ts, kind, actor, key, ref, payload, prev_hash, digest in self.iter_rows(
            first_seq, last_seq
        ):
            if seq != expected_seq:
                what = f"record {expected_seq}" if seq == expected_seq + 1 else (
                    f"records {expected_seq}..{seq - 1}"
                )  # fmt: skip
                breaks.append(ChainBreak(expected_seq, f"{what} deleted (missing from the chain)"))
            elif prev is not None and prev_hash != prev:
                breaks.append(
                    ChainBreak(
                        seq,
                        f"record {seq} does not follow record {seq - 1}: prev_hash differs "
                        f"(reordered, or record {seq - 1} rewritten with a new hash)",
                    )
                )
            body = _envelope(prev_hash, seq, ts, kind, actor, key, ref, payload)
            if sha(body).hexdigest() != digest:
                breaks.append(
                    ChainBreak(seq, f"record {seq} edited: its content does not match its hash")
                )
            if '"sender_seq":' in payload:
                twice = senders.see(seq, payload)
                if twice:
                    breaks.append(ChainBreak(seq, twice))
            expected_seq, prev = seq + 1, digest
            last_good = (seq, digest)
        breaks += [ChainBreak(seq, reason) for seq, reason in senders.gaps()]
        if anchor is not None:
            a_seq, a_hash = anchor
            row = self.db.execute(f"SELECT hash FROM {TABLE} WHERE seq = ?", [a_seq]).fetchone()
            if row is None:
                tip = last_good[0] if last_good else 0
                breaks.append(
                    ChainBreak(a_seq, f"record {a_seq} (anchored) deleted; journal ends at {tip}")
                )
            elif row[0] != a_hash:
                breaks.append(ChainBreak(a_seq, f"record {a_seq} differs from its anchored hash"))
        return breaks

    def recent_numbers(self, last_records: int) -> list[tuple[str, int]]:
        """(sender, sender_seq) of the numbered records among the last `last_records`: what a
        restarted writer must not append again when a sender's call is retried."""
        sql = (
            "SELECT json_extract(payload, '$.sender'), json_extract(payload, '$.sender_seq') "
            f"FROM {TABLE} WHERE seq > ? AND payload LIKE '%\"sender_seq\":%' ORDER BY seq"
        )
        with self._lock:
            rows = self.db.execute(sql, [self._seq - last_records]).fetchall()
        return [(str(a), int(b)) for a, b in rows if a is not None and b is not None]

    def close(self) -> None:
        self.db.close()


def _row(r: tuple) -> dict[str, Any]:
    seq, ts, kind, actor, key, ref, payload = r
    return {
        "seq": seq,
        "ts": ts,
        "kind": kind,
        "actor": actor,
        "key": key,
        "ref": ref,
        **json.loads(payload),
    }
