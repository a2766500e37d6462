"""How a journal record becomes its row: the payload's JSON and the bytes its hash covers.

Apart from the store (infra.audit) because senders run it too: a JournalSender encodes its own
records (`preencode`), so the one AuditLog only chains and commits them (issue 13 item 2).
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
from typing import Any

import orjson

from rules.execution.seal import SEALED_KINDS

_dumps = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=lambda o: _json_default(o)
).encode
# The same encoding, refusing NaN/inf: the common record has none and skips the cleaning walk.
_dumps_finite = json.JSONEncoder(
    sort_keys=True,
    separators=(",", ":"),
    ensure_ascii=False,
    allow_nan=False,
    default=lambda o: _json_default(o),
).encode


# The record payload's fast encoding (issue 13 item 2: ≥ 30,000 durable records/s): orjson is
# ten times faster than the stdlib here. Its text may differ from the stdlib's (`1e-5` against
# `1e-05`), which is harmless: the chain hashes the payload as stored, never a re-encoding. It
# writes NaN and inf as `null`, so an output with a `null` in it takes the stdlib path, which
# names each non-finite number (only when a NaN or inf is there: None is `null` too).
_ORJSON_OPTS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def _canonical(obj: Any) -> str:
    return _dumps(obj)


def _envelope(
    prev_hash: str, seq: int, ts: float, kind: str, actor: str, key: str, ref: str, payload: str
) -> bytes:
    """The bytes a record's hash covers: the canonical JSON list of its fields. orjson gives
    the stdlib's exact bytes for a list of strings and an int (checked for every code point by
    tests/infra/test_audit_verify.py), so journals written before it still verify."""
    try:
        return orjson.dumps([prev_hash, seq, repr(ts), kind, actor, key, ref, payload])
    except TypeError:  # a lone surrogate: the stdlib's way, which fails the same way later
        return _dumps([prev_hash, seq, repr(ts), kind, actor, key, ref, payload]).encode()


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "value"):  # enums
        return obj.value
    return str(obj)


def _clean(value: Any, found: list[str] | None = None) -> Any:
    """JSON has no NaN/inf: each becomes its name as a string ("nan", "inf"), and `found` (when
    given) gets an entry per replacement; `_nonfinite_paths` names them (only then: the walk
    with paths costs on every record)."""
    if isinstance(value, float) and not math.isfinite(value):
        if found is not None:
            found.append("")
        return str(value)
    if isinstance(value, dict):
        return {k: _clean(v, found) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v, found) for v in value]
    return value


def _has_nonfinite(value: Any) -> bool:
    """Whether a NaN or inf hides anywhere in `value` (orjson writes both as `null`)."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, float):
            if not math.isfinite(v):
                return True
        elif isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, (list, tuple)):
            stack.extend(v)
        elif not isinstance(v, (str, int)) and v is not None:
            return True  # a numpy scalar or array, an object: the stdlib path decides
    return False


def _nonfinite_paths(value: Any, path: str = "") -> list[str]:
    if isinstance(value, float) and not math.isfinite(value):
        return [path or "?"]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _nonfinite_paths(v, f"{path}.{k}".lstrip("."))]
    if isinstance(value, (list, tuple)):
        return [p for i, v in enumerate(value) for p in _nonfinite_paths(v, f"{path}[{i}]")]
    return []


QUARANTINE = "quarantine"  # a record that cannot be journaled as sent, with the reason


def _encode(rec: dict[str, Any], now: float) -> tuple[float, str, str, str, str, str]:
    """(ts, kind, actor, key, ref, payload) of one record. A non-finite number never reaches
    the journal: `ts` becomes the append time and any other is written as its name, both listed
    under `nonfinite` (a NULL ts would make `verify` report an edit that never happened). A
    record that cannot be serialized (a 1,000-deep field, a cycle) comes back as a `quarantine`
    record with the reason, so it alone is set aside."""
    rec = dict(rec)
    kind = str(rec.pop("kind"))
    actor, key, ref = (str(rec.pop(c, "")) for c in ("actor", "key", "ref"))
    flagged: list[str] = []
    try:
        ts = float(rec.pop("ts", now))
    except (TypeError, ValueError):  # "soon": not a time, flagged like a NaN
        ts = float("nan")
    if not math.isfinite(ts):
        flagged.append("ts")
        ts = now
    if not flagged:
        try:
            fast = orjson.dumps(rec, default=_json_default, option=_ORJSON_OPTS)
            if b"null" not in fast or not _has_nonfinite(rec):
                return ts, kind, actor, key, ref, fast.decode()
        except (TypeError, ValueError, OverflowError):
            pass  # a huge int, mixed key types, a 255-deep field: the stdlib decides
        try:
            return ts, kind, actor, key, ref, _dumps_finite(rec)
        except (RecursionError, TypeError, ValueError, OverflowError):
            pass  # a NaN or inf somewhere (or worse): the walk below names it or sets it aside
    try:
        found: list[str] = []
        body = _clean(rec, found)
        if found or flagged:
            body["nonfinite"] = flagged + (_nonfinite_paths(rec) if found else [])
        return ts, kind, actor, key, ref, _dumps(body)
    except (RecursionError, TypeError, ValueError, OverflowError) as exc:
        reason = {"reason": f"{type(exc).__name__}: {exc}"[:300], "record_kind": kind}
        if type(rec.get("sender")) is str and type(rec.get("sender_seq")) is int:
            # its number stays: `verify` sees it journaled (set aside), not lost
            reason["sender"], reason["sender_seq"] = rec["sender"], rec["sender_seq"]
        return now, QUARANTINE, actor, key, ref, _dumps(reason)


ROW_COLUMNS = "seq, ts, kind, actor, key, ref, payload, prev_hash, hash"


def _insert(conn: sqlite3.Connection, table: str, rows: list[tuple]) -> None:
    """One prepared INSERT stepped once per row. A multi-row `INSERT … VALUES (…),(…)` (one
    step, so one GIL hand-off, per 512 rows) was tried for issue 13 item 2 and cost more CPU
    per record (23.5–23.8 µs against 16.8–18.7 µs, store alone, synchronous=OFF) and gave
    fewer durable records/s through the actor (13,000 against 16,600, same load): kept out."""
    conn.executemany(f"INSERT INTO {table} ({ROW_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)", rows)


def record_hash(
    prev_hash: str, seq: int, ts: float, kind: str, actor: str, key: str, ref: str, payload: str
) -> str:
    return hashlib.sha256(_envelope(prev_hash, seq, ts, kind, actor, key, ref, payload)).hexdigest()


# A record its sender encoded (actors.common.JournalSender), as it travels to the AuditLog:
# (ts or None, kind, actor, key, ref, payload JSON, sender, sender_seq). The journal stamps a
# None ts when it appends; the sender numbers are also inside the payload (what `verify` reads).
ENCODED_LEN = 8


def preencode(rec: dict[str, Any], now: float) -> tuple | dict[str, Any]:
    """A numbered record encoded by its sender, so the one writer only chains and commits it
    (issue 13 item 2: the AuditLog was CPU-bound). The same `_encode` the store runs, so the
    row is the one the writer would have made. Records of a sealed kind travel as they are:
    the writer checks their seal on the fields the Executor sealed."""
    if rec.get("kind") in SEALED_KINDS:
        return rec
    stamped = "ts" in rec
    ts, kind, actor, key, ref, payload = _encode(rec, now)
    return (
        ts if stamped or kind == QUARANTINE else None,
        kind,
        actor,
        key,
        ref,
        payload,
        str(rec.get("sender", "")),
        int(rec.get("sender_seq", 0)),
    )


def encoded_fault(item: tuple) -> str | None:
    """None when `item` is a well-formed encoded record of a kind that may travel encoded, else
    why not (checked by the writer: anyone who reaches it over Ray can send one)."""
    if len(item) != ENCODED_LEN:
        return f"an encoded record has {ENCODED_LEN} fields, not {len(item)}"
    ts, kind, actor, key, ref, payload, sender, number = item
    if not (type(kind) is str and kind and type(actor) is str and type(key) is str):
        return "an encoded record's kind, actor and key are strings (kind not empty)"
    if type(ref) is not str or type(sender) is not str or type(number) is not int:
        return "an encoded record's ref and sender are strings, its sender_seq an int"
    if ts is not None and not (type(ts) is float and math.isfinite(ts)):
        return f"an encoded record's ts is a finite float or None, not {ts!r:.40}"
    if kind in SEALED_KINDS:
        return f"a {kind} record travels as it was sealed, never encoded"
    if type(payload) is not str:
        return "an encoded record's payload is a JSON object"
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        return f"an encoded record's payload is not JSON: {exc}"[:200]
    if type(body) is not dict:
        return "an encoded record's payload is a JSON object"
    return None
