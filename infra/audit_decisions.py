"""`audit verify` for the records that carry decisions: each must match a signed request.

The chain proves no record was edited after it was written; it cannot prove who wrote it. Before
issue 13 anyone reaching the AuditLog wrote a decision record `audit verify` accepted. Now each
decision record carries its proof (`auth`, rules.journal_records.DecisionRecord) and the
Executor's seal (rules.execution.seal), and this walk checks, with the keys at hand (one lookup,
infra.approval_keys):
- the seal under the deployment's seal key (when one is configured: a drawn key is gone);
- a person's signature of the request under their secret, or the console's voucher for the
  session under the console key; an emergency decision must be the emergency policy's;
- a decision with no signature is a break unless `demo_open` made it (then a note).
What it cannot check for want of a key is counted in the notes, never passed silently.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Any

from infra.approval_keys import console_key, person_secret, seal_key
from rules.approval import EMERGENCY_USER, sign_console, sign_request
from rules.execution.seal import unsealed


@dataclass
class DecisionCheck:
    breaks: list[tuple[int, str]] = field(default_factory=list)  # (seq, why)
    notes: list[str] = field(default_factory=list)
    checked: int = 0


def _fields(rec: dict[str, Any], auth: dict[str, Any]) -> dict[str, Any]:
    return {
        "action": rec.get("decision", ""), "user": rec.get("user", ""),
        "ids": [str(i) for i in auth.get("ids", ())], "group": auth.get("group", ""),
        "reason": rec.get("reason", ""), "ts": float(auth.get("ts") or 0.0),
        "request_id": rec.get("request_id", ""),
    }  # fmt: skip


def check_decisions(records: list[dict[str, Any]], approval: Any) -> DecisionCheck:
    """Check decision records (as read back from the journal) against the approval keys."""
    out = DecisionCheck()
    sealing, console = seal_key(approval), console_key(approval)
    unchecked: dict[str, int] = {}
    demo = legacy = 0
    for rec in records:
        if rec.get("kind") != "decision":
            continue
        out.checked += 1
        seq = int(rec.get("seq") or 0)
        if sealing:
            why = unsealed(rec, sealing)
            if why:
                out.breaks.append((seq, f"decision record {seq} {why}"))
                continue
        auth = rec.get("auth")
        if not isinstance(auth, dict) or not auth:
            legacy += 1
            continue
        signer, signature = str(auth.get("signer", "")), str(auth.get("signature", ""))
        if signer == "emergency":
            if rec.get("user") != EMERGENCY_USER or rec.get("via") != "emergency":
                out.breaks.append((seq, f"decision record {seq}: claims the emergency policy "
                                        f"but names {rec.get('user')!r} via {rec.get('via')!r}"))  # fmt: skip
            continue
        if signer == "demo" and not signature:
            demo += 1
            continue
        if not signature:
            out.breaks.append((seq, f"decision record {seq}: no signed request behind it"))
            continue
        fields = _fields(rec, auth)
        if signer == "console":
            if not console:
                unchecked["the console key"] = unchecked.get("the console key", 0) + 1
                continue
            expected = sign_console(console, str(auth.get("session", "")), **fields)
        else:
            secret = person_secret(approval, str(rec.get("user", "")))
            if not secret:
                who = f"{rec.get('user')}'s secret"
                unchecked[who] = unchecked.get(who, 0) + 1
                continue
            expected = sign_request(secret, **fields)
        if not hmac.compare_digest(expected, signature):
            out.breaks.append((seq, f"decision record {seq} by {rec.get('user')!r} does not "
                                    f"match a signed request (forged or altered)"))  # fmt: skip
    if not sealing and out.checked:
        out.notes.append("seals not checked: no seal key configured (approval.seal_key_env)")
    for what, n in sorted(unchecked.items()):
        out.notes.append(f"{n} decision signatures not checked: {what} is not at hand")
    if demo:
        out.notes.append(f"{demo} decisions unsigned under approval.demo_open (the demo)")
    if legacy:
        out.notes.append(f"{legacy} decisions journaled before signed records (no proof kept)")
    return out
