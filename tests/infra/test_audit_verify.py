"""`fengkong audit verify` names the record that was edited, deleted or reordered; searches answer
from indexes; the CLI commands work on the journal file alone."""

from __future__ import annotations

import sqlite3
import time

import pytest

from app.cli import main
from infra.audit import AuditStore


@pytest.fixture
def journal(tmp_path):
    path = tmp_path / "j.sqlite"
    store = AuditStore(path)
    t0 = time.time() - 100
    store.append(
        [
            {"kind": "alert" if i % 3 == 0 else "trade", "actor": "T", "key": f"ACC{i % 4}",
             "ref": f"r{i}", "ts": t0 + i, "value": i}
            for i in range(30)
        ]
    )  # fmt: skip
    store.close()
    return path


def _tamper(path, sql: str, *params) -> None:
    conn = sqlite3.connect(path)
    conn.execute(sql, params)
    conn.commit()
    conn.close()


def test_intact_journal_verifies(journal, capsys):
    assert main(["audit", "verify", "--journal", str(journal)]) == 0
    assert "chain intact" in capsys.readouterr().out


def test_editing_one_row_fails_verify_naming_it(journal, capsys):
    _tamper(journal, "UPDATE journal SET payload = ? WHERE seq = 17", '{"value": 1000}')
    assert main(["audit", "verify", "--journal", str(journal)]) == 1
    out = capsys.readouterr().out
    assert "BROKEN at seq 17: record 17 edited" in out
    assert out.count("BROKEN at") == 1 and "chain BROKEN" in out


def test_edit_with_recomputed_hash_is_named_by_the_next_link(journal):
    from infra.audit import record_hash

    conn = sqlite3.connect(journal)
    seq, ts, kind, actor, key, ref, _payload, prev = conn.execute(
        "SELECT seq, ts, kind, actor, key, ref, payload, prev_hash FROM journal WHERE seq = 9"
    ).fetchone()
    forged = '{"value": -1}'
    conn.execute(
        "UPDATE journal SET payload = ?, hash = ? WHERE seq = 9",
        (forged, record_hash(prev, seq, ts, kind, actor, key, ref, forged)),
    )
    conn.commit()
    conn.close()
    [brk] = AuditStore(journal).verify()
    assert brk.seq == 10 and "record 9 rewritten" in brk.reason


def test_deleted_and_reordered_rows_are_named(journal):
    _tamper(journal, "DELETE FROM journal WHERE seq IN (5, 6)")
    _tamper(journal, "UPDATE journal SET seq = -1 WHERE seq = 20")
    _tamper(journal, "UPDATE journal SET seq = 20 WHERE seq = 21")
    _tamper(journal, "UPDATE journal SET seq = 21 WHERE seq = -1")
    breaks = {b.seq: b.reason for b in AuditStore(journal).verify()}
    assert breaks[5] == "records 5..6 deleted (missing from the chain)"
    assert "edited" in breaks[20] and "edited" in breaks[21]


def test_truncated_tail_is_caught_by_an_anchor(journal):
    store = AuditStore(journal)
    anchor = (store.last_seq, store.last_hash)
    _tamper(journal, "DELETE FROM journal WHERE seq >= 28")
    reopened = AuditStore(journal)
    assert reopened.verify() == []  # the chain alone cannot see a cut end
    [brk] = reopened.verify(anchor=anchor)
    assert brk.seq == 30 and "deleted" in brk.reason


def test_search_by_account_time_and_kind(journal, capsys):
    store = AuditStore(journal)
    t0 = store.query(limit=1)[0]["ts"]
    rows = store.search(account="ACC1", since=t0 + 5, until=t0 + 20, kind="trade")
    assert [r["ref"] for r in rows] == ["r5", "r13", "r17"]
    plan = store.db.execute(
        "EXPLAIN QUERY PLAN SELECT seq FROM journal WHERE key = ? AND kind = ? AND ts >= ?",
        ["ACC1", "trade", t0],
    ).fetchall()
    assert any("idx_journal_key_ts" in str(row) for row in plan)
    assert main(["audit", "search", "--journal", str(journal), "--account", "ACC1",
                 "--from", str(t0 + 5), "--to", str(t0 + 20), "--kind", "trade"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "3 shown of 3 matching" in out and "ACC1" in out


def test_the_fast_hash_envelope_is_the_stdlib_canonical_json_for_every_code_point():
    """Journals written before orjson hashed the stdlib's canonical JSON of the record's fields;
    the fast envelope must give the very same bytes, or old journals would stop verifying."""
    import json

    from infra.audit import _envelope

    stdlib = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
    chars = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    for start in range(0, len(chars), 4096):
        text = chars[start : start + 4096]
        fields = ("0" * 64, start, 1.7e9 + start / 3, text, 'a"b\\', text[::-1], "", text)
        assert (
            _envelope(*fields)
            == stdlib([fields[0], fields[1], repr(fields[2]), *fields[3:]]).encode()
        )


def test_a_record_with_a_nan_or_a_none_still_names_the_nonfinite_field(tmp_path):
    store = AuditStore(tmp_path / "j.sqlite")
    store.append(
        [
            {"kind": "mark", "key": "A1", "value": float("nan"), "note": None},
            {"kind": "mark", "key": "A2", "value": 1e-05, "note": None},
            {"kind": "mark", "key": "A3", "value": 1e-05, "nested": {"x": [1, 2.5]}},
        ]
    )
    first, second, third = store.query(kind="mark")
    assert first["value"] == "nan" and first["nonfinite"] == ["value"]
    assert second["note"] is None and "nonfinite" not in second
    assert third["value"] == 1e-05 and third["nested"] == {"x": [1, 2.5]}
    assert store.verify() == []
