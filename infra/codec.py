"""msgpack wire codec with a schema version.

Tick frames are columnar: one raw little-endian array per field, so decoding a batch of 10,000
ticks is a few `np.frombuffer` calls instead of 10,000 dict constructions. Record frames (account
events, orders, fills) are lists of maps. Every frame carries `v` (schema version) and `kind`;
anything that does not match is rejected with a `CodecError` that says why, so the receiver can
count and quarantine it and go on with the next frame.
"""

from __future__ import annotations

import time
from typing import Any

import msgpack
import numpy as np

from rules.model import TickBatch

SCHEMA_VERSION = 1

TICK_COLUMNS: dict[str, str] = {
    "instrument_idx": "<u4",
    "last": "<f8",
    "volume": "<f8",
    "open_interest": "<f8",
    "bid": "<f8",
    "ask": "<f8",
    "exchange_ts": "<f8",
    "upper_limit": "<f8",
    "lower_limit": "<f8",
    "pre_settlement": "<f8",
}
OPTIONAL_TICK_COLUMNS = (
    "volume",
    "open_interest",
    "bid",
    "ask",
    "upper_limit",
    "lower_limit",
    "pre_settlement",
)


class CodecError(ValueError):
    """A frame that cannot be decoded; the message says what is wrong with it."""


def encode_ticks(batch: TickBatch) -> bytes:
    cols = {}
    for name, dtype in TICK_COLUMNS.items():
        arr = np.ascontiguousarray(getattr(batch, name), dtype=dtype)
        cols[name] = arr.tobytes()
    return msgpack.packb(
        {
            "v": SCHEMA_VERSION,
            "kind": "ticks",
            "n": len(batch),
            "sent_ts": batch.sent_ts or time.time(),
            "instruments": list(batch.instruments),
            "cols": cols,
        },
        use_bin_type=True,
    )


def _unpack(payload: bytes) -> dict[str, Any]:
    try:
        frame = msgpack.unpackb(payload, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated types
        raise CodecError(f"not a msgpack frame: {type(exc).__name__}: {exc}") from None
    if not isinstance(frame, dict):
        raise CodecError(f"frame is a {type(frame).__name__}, expected a map")
    version = frame.get("v")
    if version != SCHEMA_VERSION:
        raise CodecError(f"schema version {version!r} not supported (expected {SCHEMA_VERSION})")
    return frame


def decode_ticks(payload: bytes) -> TickBatch:
    """Decode a tick frame. Raises CodecError for any structural problem.

    Values are not judged here (NaN prices are a data problem, see `split_bad_ticks`).
    """
    frame = _unpack(payload)
    if frame.get("kind") != "ticks":
        raise CodecError(f"frame kind {frame.get('kind')!r}, expected 'ticks'")
    n = frame.get("n")
    instruments = frame.get("instruments")
    cols = frame.get("cols")
    if not isinstance(n, int) or n < 0:
        raise CodecError(f"bad row count n={n!r}")
    if not isinstance(instruments, list) or not all(isinstance(s, str) for s in instruments):
        raise CodecError("'instruments' must be a list of strings")
    if not isinstance(cols, dict):
        raise CodecError("'cols' must be a map of column name to bytes")
    arrays: dict[str, np.ndarray] = {}
    for name, dtype in TICK_COLUMNS.items():
        raw = cols.get(name)
        if raw is None and name in OPTIONAL_TICK_COLUMNS:
            arrays[name] = np.full(n, np.nan)
            continue
        if not isinstance(raw, bytes):
            raise CodecError(f"column {name!r} missing or not bytes")
        itemsize = np.dtype(dtype).itemsize
        if len(raw) != n * itemsize:
            raise CodecError(f"column {name!r} has {len(raw)} bytes, expected {n} × {itemsize}")
        arrays[name] = np.frombuffer(raw, dtype=dtype)
    idx = arrays["instrument_idx"]
    if n and int(idx.max()) >= len(instruments):
        raise CodecError(f"instrument_idx {int(idx.max())} out of range ({len(instruments)} names)")
    sent_ts = frame.get("sent_ts", 0.0)
    return TickBatch(
        instruments=instruments,
        sent_ts=float(sent_ts) if isinstance(sent_ts, (int, float)) else 0.0,
        **arrays,
    )


def split_bad_ticks(batch: TickBatch) -> tuple[TickBatch, np.ndarray]:
    """Separate ticks with a non-finite last price (NaN, inf). Zero and negative prices are
    prices (crude oil settled at −37.63 on 2020-04-20): they stay in the batch.

    Returns the good ticks and a boolean mask of the bad rows (to count and quarantine);
    the good rest of the batch goes on.
    """
    bad = ~np.isfinite(batch.last)
    if not bad.any():
        return batch, bad
    keep = ~bad
    fields = {name: getattr(batch, name)[keep] for name in TICK_COLUMNS}
    return TickBatch(instruments=batch.instruments, sent_ts=batch.sent_ts, **fields), bad


def encode_records(kind: str, records: list[dict[str, Any]]) -> bytes:
    return msgpack.packb(
        {"v": SCHEMA_VERSION, "kind": kind, "sent_ts": time.time(), "records": records},
        use_bin_type=True,
    )


def decode_records(payload: bytes, kind: str | None = None) -> tuple[str, list[dict[str, Any]]]:
    """Decode a record frame; returns (kind, records)."""
    frame = _unpack(payload)
    got = frame.get("kind")
    if not isinstance(got, str):
        raise CodecError("frame has no 'kind'")
    if kind is not None and got != kind:
        raise CodecError(f"frame kind {got!r}, expected {kind!r}")
    records = frame.get("records")
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise CodecError("'records' must be a list of maps")
    return got, records
