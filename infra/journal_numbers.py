"""Per-sender numbering of journal records: what lets `audit verify` prove completeness.

A sender numbers its records 1, 2, 3… (`stamp`; actors.common.JournalSender does it for an
actor), and `SenderSeqs` walks the journal to find a number that never landed — a record lost
from the writer's memory, which the hash chain alone cannot see, since the chain of what was
written is intact.
"""

from __future__ import annotations

import json
from typing import Any


def stamp(records: list[dict[str, Any]], sender: str, last: int) -> int:
    """Number a sender's records 1, 2, 3… (`sender`, `sender_seq`) so `verify` can prove none
    it sent is missing, whatever the writer lost; returns the last number used."""
    for rec in records:
        if rec.get("sender") == sender and "sender_seq" in rec:
            continue  # sent before (a retry): it keeps its number, so the writer can drop a copy
        last += 1
        rec["sender"], rec["sender_seq"] = sender, last
    return last


class SenderSeqs:
    """Each sender's numbers as `verify` meets them, in journal order or not: a sender's calls
    may be committed out of order (an asynchronous writer starts them as Ray delivers them),
    so a number is missing only if none arrived by the end of the walk. Per sender it keeps the
    highest number below which all arrived, plus the few that arrived early (with their seq)."""

    def __init__(self, from_start: bool) -> None:
        self.from_start = from_start
        self.low: dict[str, int] = {}  # every number up to it arrived
        self.early: dict[str, dict[int, int]] = {}  # number -> journal seq, above a hole

    def see(self, seq: int, payload: str) -> str | None:
        """Note one record's number; returns the reason when it was journaled twice."""
        try:
            body = json.loads(payload)
            sender, n = str(body["sender"]), int(body["sender_seq"])
        except (ValueError, KeyError, TypeError):
            return None
        low = self.low.get(sender)
        if low is None:  # a range check starts at whatever number it meets first
            low = 0 if self.from_start else n - 1
        early = self.early.setdefault(sender, {})
        if n <= low or n in early:
            self.low[sender] = low
            return f"sender {sender}: record {n} journaled twice"
        if n == low + 1:
            low = n
            while low + 1 in early:
                low += 1
                del early[low]
        else:
            early[n] = seq
        self.low[sender] = low
        return None

    def gaps(self) -> list[tuple[int, str]]:
        """Every number a sender used that never landed, named at the record after the hole."""
        out: list[tuple[int, str]] = []
        for sender, early in self.early.items():
            low = self.low[sender]
            for n in sorted(early):
                if n > low + 1:
                    what = f"record {low + 1}" if n == low + 2 else f"records {low + 1}..{n - 1}"
                    lost = f"sender {sender}: {what} sent but never journaled (lost)"
                    out.append((early[n], lost))
                low = n
        return sorted(out)
