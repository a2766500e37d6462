"""Records their sender encodes (issue 13 item 2) become the rows the writer would have made.

A JournalSender runs infra.audit_encode.preencode and the AuditLog only chains and commits; the
journal must not tell the difference: same kind, columns and payload text, the same named
non-finite numbers and quarantine records, and `verify` clean and complete. A malformed encoded
record, or one of a sealed kind, is refused by the writer's check with its reason.
"""

from __future__ import annotations

import numpy as np
import pytest

from infra.audit import QUARANTINE, AuditStore
from infra.audit_encode import encoded_fault, preencode
from infra.journal_numbers import stamp

NOW = 1_764_000_000.0


def _deep(n: int) -> dict:
    value: dict = {}
    for _ in range(n):
        value = {"x": value}
    return value


def _records() -> list[dict]:
    return [
        {"kind": "trade", "key": "ACC1", "ref": "t1", "ts": NOW, "price": 3001.5, "volume": 2},
        {"kind": "risk_event", "key": "ACC2", "ts": NOW + 1, "value": float("nan"), "x": [1.0]},
        {"kind": "account_mark", "key": "ACC3", "ts": float("inf"), "equity": 1e6},
        {"kind": "alert", "key": "ACC4", "ref": "a1", "ts": NOW + 2, "n": np.float64(0.93)},
        {"kind": "order_report", "key": "ACC5", "ts": NOW + 3, "note": "风险度 93%", "v": None},
        {"kind": "trade", "key": "ACC6", "ts": NOW + 4, "deep": _deep(990)},
        {"kind": "notification.queued", "key": "sms", "ref": "n1", "ts": NOW + 5, "big": 2**70},
    ]


def _rows(store: AuditStore) -> list[tuple]:
    return store.db.execute(
        "SELECT ts, kind, actor, key, ref, payload FROM journal ORDER BY seq"
    ).fetchall()


def test_a_preencoded_record_is_the_row_the_writer_would_have_made(tmp_path):
    plain, encoded = AuditStore(tmp_path / "plain.sqlite"), AuditStore(tmp_path / "enc.sqlite")
    records = _records()
    stamp(records, "Shard:1", 0)
    plain.append([dict(r) for r in records])
    wire = [preencode(dict(r), NOW) for r in records]
    assert all(type(w) is tuple and encoded_fault(w) is None for w in wire)
    encoded.append(wire)
    # the same rows; a ts that was not a time (inf) or a quarantined record's is the encoder's
    # clock (the sender's, or the writer's for a record it encodes itself)
    own_clock = {2, 5}
    for i, (mine, theirs) in enumerate(zip(_rows(encoded), _rows(plain), strict=True)):
        if i == 5:  # the RecursionError's words depend on where the stack ran out
            mine, theirs = mine[:5], theirs[:5]
        assert mine[1:] == theirs[1:]
        assert mine[0] == (NOW if i in own_clock else theirs[0])
    kinds = [r[1] for r in _rows(encoded)]
    assert kinds[5] == QUARANTINE  # the 990-deep record, set aside with its reason
    assert '"sender_seq":6' in _rows(encoded)[5][5]  # its number kept: not reported lost
    assert '"nonfinite":["value"]' in _rows(encoded)[1][5]
    assert encoded.verify() == [] and plain.verify() == []


def test_a_record_without_ts_is_stamped_by_the_journal(tmp_path):
    store = AuditStore(tmp_path / "j.sqlite")
    [wire] = [preencode({"kind": "alert", "key": "A", "sender": "S:1", "sender_seq": 1}, 5.0)]
    assert wire[0] is None and wire[6:] == ("S:1", 1)
    store.append([wire])
    [row] = store.query()
    assert row["ts"] > 5.0 and row["sender_seq"] == 1  # the append's time, not the sender's


def test_decision_records_travel_as_they_were_sealed():
    rec = {"kind": "decision", "ref": "p1", "seal": "abc"}
    assert preencode(rec, NOW) is rec


@pytest.mark.parametrize(
    ("item", "why"),
    [
        ((None, "alert", "", "", ""), "8 fields"),
        ((None, "", "a", "k", "r", "{}", "S", 1), "kind not empty"),
        ((None, "alert", "a", "k", "r", "{}", "S", "1"), "sender_seq an int"),
        ((float("nan"), "alert", "a", "k", "r", "{}", "S", 1), "finite float"),
        ((None, "decision", "Executor", "k", "r", "{}", "S", 1), "sealed"),
        ((None, "alert", "a", "k", "r", "{not json", "S", 1), "not JSON"),
        ((None, "alert", "a", "k", "r", "[1]", "S", 1), "JSON object"),
    ],
)
def test_the_writer_refuses_a_malformed_encoded_record_with_its_reason(item, why):
    fault = encoded_fault(item)
    assert fault is not None and why in fault
