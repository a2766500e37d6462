"""Every question the journal answers by time comes from an index, with no index on ts alone.

Issue 13 item 2 dropped `idx_journal_ts` (the store appends ~25% faster without it): a question
by time only now asks (kind, ts) once per kind. Each statement the store runs for such a question
is captured and explained here: none scans the table, and each answers as a plain filter would.
A journal written before (with idx_journal_ts) answers the same.
"""

from __future__ import annotations

import sqlite3

import pytest

from infra.audit import AuditStore
from infra.audit_archive import archive_day, day_bounds, read_archive

KINDS = ("trade", "risk_event", "alert", "notification.sent", "account_mark")


def _fill(store: AuditStore, t0: float, n: int = 400) -> list[dict]:
    records = [
        {"kind": KINDS[i % len(KINDS)], "key": f"ACC{i % 7}", "ref": f"r{i}", "ts": t0 + i, "i": i}
        for i in range(n)
    ]
    store.append(records)
    return records


def _statements(store: AuditStore, ask) -> tuple[object, list[str]]:
    seen: list[str] = []
    store.db.conn.set_trace_callback(seen.append)
    try:
        answer = ask()
    finally:
        store.db.conn.set_trace_callback(None)
    return answer, [s for s in seen if s.lstrip().upper().startswith("SELECT")]


def _assert_indexed(store: AuditStore, statements: list[str]) -> None:
    assert statements
    for sql in statements:
        plan = [row[-1] for row in store.db.execute("EXPLAIN QUERY PLAN " + sql).fetchall()]
        scans = [p for p in plan if p.startswith("SCAN journal") and "INDEX" not in p]
        assert not scans, f"{sql!r} scans the table: {plan}"


@pytest.fixture(params=["new", "old"])
def store(tmp_path, request):
    path = tmp_path / "journal.sqlite"
    if request.param == "old":  # a journal written when idx_journal_ts existed keeps it
        AuditStore(path).close()
        db = sqlite3.connect(path)
        db.execute("CREATE INDEX idx_journal_ts ON journal (ts)")
        db.commit()
        db.close()
    s = AuditStore(path)
    yield s
    s.close()


def test_the_new_journal_has_no_index_on_ts_alone(tmp_path):
    store = AuditStore(tmp_path / "j.sqlite")
    names = {r[0] for r in store.db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "idx_journal_ts" not in names
    assert {"idx_journal_kind_ts", "idx_journal_key_ts", "idx_journal_ref"} <= names


def test_questions_by_time_answer_from_an_index_and_match_a_plain_filter(store):
    t0 = 1_764_000_000.0
    records = _fill(store, t0)
    lo, hi = t0 + 50, t0 + 149
    inside = [r for r in records if lo <= r["ts"] <= hi]

    rows, sql = _statements(store, lambda: store.query(since=lo, until=hi))
    _assert_indexed(store, sql)
    assert [r["i"] for r in rows] == [r["i"] for r in inside]  # journal order kept

    counts, sql = _statements(store, lambda: store.counts_by_kind(lo, hi))
    _assert_indexed(store, sql)
    assert counts == {k: sum(r["kind"] == k for r in inside) for k in KINDS}

    span, sql = _statements(store, lambda: store.seq_range(lo, hi))
    _assert_indexed(store, sql)
    assert span == (51, 150)

    rows, sql = _statements(store, lambda: store.query(since=lo, until=hi, limit=3))
    assert [r["i"] for r in rows] == [50, 51, 52]
    assert store.kinds() == sorted(KINDS)


def test_an_empty_journal_answers_nothing_by_time(tmp_path):
    store = AuditStore(tmp_path / "empty.sqlite")
    assert store.query(since=0, until=1e10) == []
    assert store.counts_by_kind(0, 1e10) == {}
    assert store.seq_range(0, 1e10) is None
    assert store.kinds() == []


def test_a_day_archive_reads_the_day_from_an_index(store, tmp_path):
    since, until = day_bounds("20261203")
    records = _fill(store, since - 100)  # 100 records the day before, 300 on the day
    manifest, sql = _statements(store, lambda: archive_day(store, "20261203", tmp_path / "out"))
    _assert_indexed(store, sql)
    assert manifest["records"] == 300 and manifest["first_seq"] == 101
    got = read_archive(tmp_path / "out" / manifest["file"])
    assert [r["seq"] for r in got] == list(range(101, 401))
    assert len(records) == 400
