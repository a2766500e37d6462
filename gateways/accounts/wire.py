"""The account wire format as code: record kinds, their required fields, the heads frame.

docs/accounts-wire.md is the reference (every field, unit, sign, default, a worked example per
kind); this module enforces the part a machine can check before a record touches a book: the
kind is known and every required field is present with the right shape. It lives apart from
the bus (`bus.py`) and its client (`bus_client.py`) because sources, the bus and the shards all
use it, and the bus only routes while the shard judges (journals, quarantines) what it rejects.
"""

from __future__ import annotations

import math
from typing import Any

import msgpack
import numpy as np

from infra.codec import SCHEMA_VERSION, CodecError
from rules.sharding import BUCKETS

# order / cancel: the order stream for behaviour rules (rules.engine.kinds.behaviour) and the
# book's frozen amounts; settlement: the trading day rolls for every account (no account_id).
RECORD_TYPES = frozenset(
    {"snapshot", "trade", "deposit", "withdraw", "remove", "update", "order", "cancel",
     "settlement"}
)  # fmt: skip
BROADCAST_TYPES = frozenset({"settlement"})  # every bucket gets a copy (see bus.py)
HEAD_TOPIC = b"HEAD"

_NUMBER = "number"
_TEXT = "text"
_MAP = "map"
_LIST = "list"
_DAY = "day"  # YYYYMMDD
# Required fields per kind (account_id for every kind but settlement is checked first).
REQUIRED: dict[str, tuple[tuple[str, str], ...]] = {
    "snapshot": (("pre_balance", _NUMBER),),
    "trade": (
        ("instrument", _TEXT),
        ("direction", _TEXT),
        ("volume", _NUMBER),
        ("price", _NUMBER),
    ),  # fmt: skip
    "deposit": (("amount", _NUMBER),),
    "withdraw": (("amount", _NUMBER),),
    "remove": (),
    "update": (),
    "order": (("order_ref", _TEXT), ("instrument", _TEXT)),
    "cancel": (("order_ref", _TEXT),),
    "settlement": (("trading_day", _DAY), ("next_trading_day", _DAY), ("prices", _MAP)),
}
POSITION_REQUIRED = (("instrument", _TEXT), ("direction", _TEXT), ("volume", _NUMBER))


def _shape_problem(name: str, value: Any, shape: str) -> str | None:
    if shape == _NUMBER:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{name} must be a number, got {type(value).__name__}"
        if not math.isfinite(value):
            return f"{name} must be finite, got {value}"
    elif shape == _TEXT:
        if not isinstance(value, str) or not value:
            return f"{name} must be a non-empty string"
    elif shape == _DAY:
        if not isinstance(value, str) or len(value) != 8 or not value.isdigit():
            return f"{name} must be a trading day YYYYMMDD, got {value!r}"
    elif shape == _MAP and not isinstance(value, dict):
        return f"{name} must be a map, got {type(value).__name__}"
    elif shape == _LIST and not isinstance(value, list | tuple):
        return f"{name} must be a list, got {type(value).__name__}"
    return None


def route_problem(record: Any) -> str | None:
    """Why the bus cannot route a record (not a map, unknown type, no account_id), or None."""
    if not isinstance(record, dict):
        return f"record is a {type(record).__name__}, expected a map"
    kind = record.get("type")
    if not isinstance(kind, str) or kind not in RECORD_TYPES:  # a list type is not hashable
        return f"type {kind!r} not one of {sorted(RECORD_TYPES)}"
    if kind not in BROADCAST_TYPES and (
        not isinstance(record.get("account_id"), str) or not record["account_id"]
    ):
        return "account_id missing or not a string"
    return None


def record_problem(record: Any) -> str | None:
    """Why a record is not a valid account event (naming the field), or None when it is.

    Checks presence and shape of the required fields of its kind; figures (a close larger
    than the position, an unknown contract) are the book's to judge.
    """
    problem = route_problem(record)
    if problem is not None:
        return problem
    kind = record["type"]
    if record.get("ts") is not None and _shape_problem("ts", record["ts"], _NUMBER):
        return f"{kind}: {_shape_problem('ts', record['ts'], _NUMBER)} (seconds since the epoch)"
    for name, shape in REQUIRED[kind]:
        if name not in record or record[name] is None:
            return f"{kind}: required field {name!r} missing"
        problem = _shape_problem(name, record[name], shape)
        if problem is not None:
            return f"{kind}: {problem}"
    if kind == "snapshot" and "positions" in record:
        positions = record["positions"]
        problem = _shape_problem("positions", positions, _LIST)
        if problem is not None:
            return f"snapshot: {problem}"
        for i, p in enumerate(positions):
            if not isinstance(p, dict):
                return f"snapshot: positions[{i}] must be a map"
            for name, shape in POSITION_REQUIRED:
                if name not in p:
                    return f"snapshot: positions[{i}] required field {name!r} missing"
                problem = _shape_problem(name, p[name], shape)
                if problem is not None:
                    return f"snapshot: positions[{i}] {problem}"
            if "cost_price" not in p and "open_price" not in p:
                return f"snapshot: positions[{i}] required field 'cost_price' missing"
    if kind == "settlement":
        for instrument, price in record["prices"].items():
            if not isinstance(instrument, str):
                return f"settlement: prices key {instrument!r} is not an instrument name"
            problem = _shape_problem(f"prices[{instrument!r}]", price, _NUMBER)
            if problem is not None:
                return f"settlement: {problem}"
    return None


def encode_heads(heads: np.ndarray, epoch: int = 0) -> bytes:
    """`epoch`: the bus's incarnation (drawn at its start): a client that sees it change knows
    the bus restarted with a new log and starts over from its beginning (bus_client)."""
    payload = np.ascontiguousarray(heads, dtype="<u8").tobytes()
    frame: dict[str, Any] = {"v": SCHEMA_VERSION, "kind": "heads", "heads": payload}
    if epoch:
        frame["epoch"] = int(epoch)
    return msgpack.packb(frame, use_bin_type=True)


def decode_heads(payload: bytes) -> np.ndarray:
    return decode_heads_epoch(payload)[0]


def decode_heads_epoch(payload: bytes) -> tuple[np.ndarray, int]:
    """The heads and the bus's epoch (0 from a bus that sends none)."""
    try:
        frame = msgpack.unpackb(payload, raw=False)
    except Exception as exc:
        raise CodecError(f"heads frame is not msgpack: {exc}") from None
    if (
        not isinstance(frame, dict)
        or frame.get("v") != SCHEMA_VERSION
        or frame.get("kind") != "heads"
    ):
        raise CodecError("not a v1 heads frame")
    raw = frame.get("heads")
    if not isinstance(raw, bytes) or len(raw) != BUCKETS * 8:
        raise CodecError(f"heads must be {BUCKETS} uint64 values")
    epoch = frame.get("epoch", 0)
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise CodecError("heads epoch must be a non-negative integer")
    return np.frombuffer(raw, dtype="<u8"), epoch
