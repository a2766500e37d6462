"""`audit verify` proves completeness per sender (issue 13, item 2): a record a sender numbered
(infra.audit.stamp) but the writer never committed — lost from its memory queue in a kill —
is reported, which the hash chain alone cannot see (the chain of what was written is intact)."""

from __future__ import annotations

from app.cli import main
from infra.audit import AuditStore, stamp


def _records(n: int) -> list[dict]:
    return [{"kind": "alert", "key": f"A{i}", "ref": f"a{i}"} for i in range(n)]


def test_a_record_lost_before_commit_is_reported_by_verify(tmp_path, capsys):
    store = AuditStore(tmp_path / "j.sqlite")
    sent = _records(10)
    assert stamp(sent, "Correlator:1", 0) == 10
    store.append(sent[:3] + sent[4:7] + sent[9:])  # the writer lost 4, and 8..9
    other = _records(3)
    stamp(other, "Executor:1", 0)
    store.append(other)
    reasons = [b.reason for b in store.verify()]
    assert reasons == [
        "sender Correlator:1: record 4 sent but never journaled (lost)",
        "sender Correlator:1: records 8..9 sent but never journaled (lost)",
    ]
    store.close()
    assert main(["audit", "verify", "--journal", str(tmp_path / "j.sqlite")]) != 0
    assert "never journaled" in capsys.readouterr().out


def test_a_complete_journal_verifies_and_a_range_check_starts_anywhere(tmp_path):
    store = AuditStore(tmp_path / "j.sqlite")
    sent = _records(20)
    stamp(sent, "Correlator:1", 0)
    store.append(sent)
    assert store.verify() == []
    assert store.verify(first_seq=8) == []  # a day's range: its first record is the baseline


def test_a_senders_records_landing_out_of_order_are_complete_and_a_copy_is_named(tmp_path):
    """The asynchronous writer may commit a sender's calls out of order (Ray starts them as it
    delivers them): numbers that all arrived, in any order, are complete; a number twice is a
    copy; a hole is still named at the record after it."""
    store = AuditStore(tmp_path / "j.sqlite")
    sent = _records(6)
    stamp(sent, "Executor:1", 0)
    store.append([sent[0], sent[2], sent[1], sent[4], sent[3], sent[5]])
    assert store.verify() == []
    store.append([dict(sent[5])])  # the same number again
    other = _records(4)
    stamp(other, "AccountShard.0:1", 0)
    store.append([other[0], other[3], other[1]])  # 3 never landed
    reasons = [b.reason for b in store.verify()]
    assert reasons == [
        "sender Executor:1: record 6 journaled twice",
        "sender AccountShard.0:1: record 3 sent but never journaled (lost)",
    ]
    store.close()
