"""A restarted Correlator's id memory (rules.engine.resume): every alert it journaled, and every
alert it handed over in a batch even when that alert's own `alert` record never reached the
journal (sent non-durably, lost with the process), so a restarted shard that raises the same
alert again is dropped as a duplicate instead of paged a second time."""

from __future__ import annotations

from rules.engine.resume import resume
from rules.model import Alert


def _alert_record(alert_id: str) -> dict:
    return Alert(alert_id, "r.warn", "ACC1", "warning", "t", 0.81, 0.8, 1.0, 1.0).to_record()


def _grouped(ids: list[str], sequence: int = 1) -> dict:
    return {"key": "r.warn", "ref": "g1", "alert_ids": ids, "members": len(ids),
            "sequence": sequence, "size": len(ids), "ts": 2.0}  # fmt: skip


def test_an_alert_in_a_grouped_batch_is_seen_without_its_alert_record() -> None:
    found = resume([_alert_record("a1")], [_grouped(["a1", "a2"])], accepted_ids=["a1", "a2"])
    assert found.seen == {"a1", "a2"}
    assert found.pending == [] and found.unsent == []  # a2 cannot be rebuilt: not sent again


def test_journaled_alerts_not_handed_over_are_pending_and_seen() -> None:
    found = resume([_alert_record("a1"), _alert_record("a3")], [_grouped(["a1"])], ["a1"])
    assert found.seen == {"a1", "a3"}
    assert [a.alert_id for a in found.pending] == ["a3"]
