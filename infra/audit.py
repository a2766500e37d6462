"""Append-only, hash-chained journal in SQLite (through sqlite-utils).

One writer (the AuditLog actor) appends in batches inside one transaction; WAL lets the CLI and
reports read while it writes. Each record carries the hash of the one before, so an edited,
deleted or reordered row breaks the chain at a place `verify` can name.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

GENESIS = "0" * 64
TABLE = "journal"


def _canonical(obj: Any) -> str:
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default
    )


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "value"):  # enums
        return obj.value
    return str(obj)


def _clean(value: Any) -> Any:
    """JSON has no NaN/inf; keep them readable as strings instead of failing the batch."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def record_hash(
    prev_hash: str, seq: int, ts: float, kind: str, actor: str, key: str, ref: str, payload: str
) -> str:
    body = _canonical([prev_hash, seq, repr(ts), kind, actor, key, ref, payload])
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainBreak:
    seq: int
    reason: str


class AuditStore:
    """The journal file. Not thread-safe for writers: one writer per file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection shared by the actor's threads, serialised by a lock.
        self._lock = threading.RLock()
        self.db = sqlite_utils.Database(sqlite3.connect(str(self.path), check_same_thread=False))
        self.db.enable_wal()
        self.db.execute("PRAGMA synchronous=NORMAL")
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
            self.db[TABLE].create_index(["kind", "ts"])
            self.db[TABLE].create_index(["key", "ts"])
            self.db[TABLE].create_index(["ref"])
        last = self.db.execute(
            f"SELECT seq, hash FROM {TABLE} ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        self._seq, self._hash = (last[0], last[1]) if last else (0, GENESIS)

    @property
    def last_seq(self) -> int:
        return self._seq

    def append(self, records: Iterable[dict[str, Any]]) -> int:
        """Append records {kind, actor?, key?, ref?, ts?, payload...}; returns the last seq."""
        rows = []
        seq, prev = self._seq, self._hash
        for rec in records:
            rec = dict(rec)
            kind = str(rec.pop("kind"))
            actor = str(rec.pop("actor", ""))
            key = str(rec.pop("key", ""))
            ref = str(rec.pop("ref", ""))
            ts = float(rec.pop("ts", time.time()))
            payload = _canonical(_clean(rec))
            seq += 1
            digest = record_hash(prev, seq, ts, kind, actor, key, ref, payload)
            rows.append(
                {
                    "seq": seq,
                    "ts": ts,
                    "kind": kind,
                    "actor": actor,
                    "key": key,
                    "ref": ref,
                    "payload": payload,
                    "prev_hash": prev,
                    "hash": digest,
                }
            )
            prev = digest
        if rows:
            with self._lock, self.db.conn:
                self.db[TABLE].insert_all(rows, batch_size=1000)
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
    ) -> list[dict[str, Any]]:
        where, params = [], []
        for column, value in (("kind", kind), ("key", key), ("ref", ref)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if since is not None:
            where.append("ts >= ?")
            params.append(since)
        if until is not None:
            where.append("ts <= ?")
            params.append(until)
        sql = f"SELECT seq, ts, kind, actor, key, ref, payload FROM {TABLE}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY seq"
        if limit:
            sql += f" LIMIT {int(limit)}"
        out = []
        with self._lock:
            fetched = self.db.execute(sql, params).fetchall()
        for seq, ts, k, actor, key_, ref_, payload in fetched:
            out.append(
                {
                    "seq": seq,
                    "ts": ts,
                    "kind": k,
                    "actor": actor,
                    "key": key_,
                    "ref": ref_,
                    **json.loads(payload),
                }
            )
        return out

    def count(self, kind: str | None = None) -> int:
        if kind is None:
            return self.db.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]
        return self.db.execute(f"SELECT count(*) FROM {TABLE} WHERE kind = ?", [kind]).fetchone()[0]

    def iter_rows(self) -> Iterator[tuple]:
        yield from self.db.execute(
            f"SELECT seq, ts, kind, actor, key, ref, payload, prev_hash, hash FROM {TABLE} ORDER BY seq"
        )

    def verify(self) -> list[ChainBreak]:
        """Walk the chain; every break names the seq where it shows."""
        breaks: list[ChainBreak] = []
        expected_seq, prev = 1, GENESIS
        for seq, ts, kind, actor, key, ref, payload, prev_hash, digest in self.iter_rows():
            if seq != expected_seq:
                breaks.append(
                    ChainBreak(expected_seq, f"records {expected_seq}..{seq - 1} missing")
                )
            if prev_hash != prev:
                breaks.append(
                    ChainBreak(
                        seq, "prev_hash does not match the record before (deleted or reordered)"
                    )
                )
            if record_hash(prev_hash, seq, ts, kind, actor, key, ref, payload) != digest:
                breaks.append(ChainBreak(seq, "content does not match its hash (edited)"))
            expected_seq, prev = seq + 1, digest
        return breaks

    def close(self) -> None:
        self.db.close()
