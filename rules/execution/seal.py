"""Seals on the journal records that carry decisions: only the Executor writes them.

Anyone who reaches the AuditLog over Ray could append `{"kind": "decision", ...}` (issue 13:
`audit.durable.remote([forged decision])` was accepted, `audit verify` passed it, and a restarted
Executor would have rebuilt an approval from it and sent the orders). So the Executor seals each
such record with the deployment's seal key (HMAC-SHA256 over the record's canonical JSON), the
AuditLog refuses a decision record whose seal does not match, a restarted Executor skips one,
and `audit verify` reports it. The seal covers every field the Executor wrote; the journal's
own additions (`seq`, the sender numbering) are outside it. Pure: stdlib only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from typing import Any

SEALED_KINDS = frozenset({"decision"})
SEAL = "seal"
FORGED_DECISION = "FORGED_DECISION"
# added after the Executor sealed the record (the journal's numbering) or by reading it back
_OUTSIDE = frozenset({SEAL, "seq", "sender", "sender_seq"})

_dumps = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
).encode


def _body(rec: Mapping[str, Any]) -> bytes:
    return _dumps({k: v for k, v in rec.items() if k not in _OUTSIDE}).encode()


def seal_of(rec: Mapping[str, Any], key: str) -> str:
    return hmac.new(key.encode(), _body(rec), hashlib.sha256).hexdigest()


def seal(records: Iterable[dict[str, Any]], key: str) -> None:
    """Seal (in place) the records of a sealed kind; others are left as they are."""
    for rec in records:
        if rec.get("kind") in SEALED_KINDS:
            rec[SEAL] = seal_of(rec, key)


def unsealed(rec: Mapping[str, Any], key: str | None) -> str | None:
    """None when `rec` needs no seal or carries the right one, else why it is refused."""
    if rec.get("kind") not in SEALED_KINDS:
        return None
    if not key:
        return f"{FORGED_DECISION}: no seal key here, a decision record cannot be proven"
    given = rec.get(SEAL)
    if not isinstance(given, str) or not given:
        return f"{FORGED_DECISION}: decision record {rec.get('ref', '')!r} carries no seal"
    if not hmac.compare_digest(seal_of(rec, key), given):
        return (
            f"{FORGED_DECISION}: decision record {rec.get('ref', '')!r} was not written by "
            "the Executor (its seal does not match)"
        )
    return None
