"""The Notifier's typed journal records: every record the machine writes is one of them and reads
back as the same values; old records (no version) read; a queued record missing what a resend
needs is refused with the field named."""

from __future__ import annotations

import pytest

from rules.escalation import Level, LevelStep
from rules.journal_records import notify as records
from rules.notify.inputs import RETRYABLE, Ack, AlertsIn, ProviderStatus
from rules.notify.model import LaneSpec
from tests.notifier.machine_driver import EMAIL, Driver, alert, routing


def busy_journal() -> list[dict]:
    sms = LaneSpec("sms", "twilio_sms", failover=("email",))
    d = Driver(
        [sms, EMAIL],
        routing(Level("desk", 0.0, (LevelStep("sms"), LevelStep("email")))),
        breaker_failures=1,
    )
    a, b = alert("T1"), alert("T2")
    d.apply(AlertsIn((a, b)), 0.0)
    for p in d.tick(0.0):
        d.answer(p, 0.1, outcome=RETRYABLE if p.channel == "sms" else "accepted", error="503")
    d.deliver_all(0.2, until=60.0)
    q = next(r for r in d.journal if r["kind"] == "notification.delivered")
    d.apply(ProviderStatus(q["ref"], {"MessageStatus": "delivered", "MessageSid": "SM1"}), 61.0)
    d.apply(Ack(a.alert_id, "zhang", "cli"), 62.0)
    d.apply(AlertsIn((alert("T3"),)), 62.5)  # queued, never sent: the restart resumes it
    after = Driver([sms, EMAIL], routing())
    after.journal = [*d.journal, {"kind": "notification.queued", "ref": "old", "key": "sms"}]
    after.apply(after.replay(), 63.0)
    return after.journal


def test_every_record_the_machine_writes_is_typed_and_reads_back_the_same() -> None:
    journal = busy_journal()
    kinds = {r["kind"] for r in journal}
    assert kinds >= {
        "notification.accepted",
        "escalation.opened",
        "escalation.step",
        "notification.queued",
        "notification.sending",
        "notification.attempt",
        "notification.delivered",
        "notification.failover",
        "notification.status",
        "alert.acked",
        "notification.resumed",
        "notification.unresumable",
    }
    for rec in journal:
        cls = records.BY_KIND[rec["kind"]]
        if rec["ref"] == "old":
            continue
        typed = cls.from_record(rec)
        assert typed.kind == rec["kind"] and typed.version == rec["v"] == 1
        again = typed.to_record()
        assert {k: v for k, v in rec.items() if k != "seq"} == again


def test_the_python_keyword_try_is_the_journal_key_of_try_id() -> None:
    rec = records.Attempt(key="sms", ref="k", attempt=1, ok=True, retry=False, try_id="s-1")
    out = rec.to_record()
    assert out["try"] == "s-1" and "try_id" not in out
    assert records.Attempt.from_record(out).try_id == "s-1"


def test_an_old_record_without_version_reads_and_unknown_keys_are_ignored() -> None:
    old = {"kind": "escalation.step", "ref": "p", "key": "sms", "step": 2, "seq": 9, "new": 1}
    step = records.StepFired.from_record(old)
    assert (step.step, step.ref, step.key, step.version) == (2, "p", "sms", 1)


def test_a_queued_record_missing_what_a_resend_needs_is_refused_naming_it() -> None:
    with pytest.raises(TypeError, match="severity"):
        records.Queued.from_record({"ref": "k", "key": "sms", "recipient": "", "page_id": "p"})


def test_the_notifiers_kinds_are_in_the_one_registry_and_a_missing_required_field_is_named():
    from rules.journal_records import KINDS, REGISTRY, parse

    for cls in records.RECORDS:
        assert REGISTRY[cls.KIND] is cls and cls.KIND in KINDS
    queued = records.Queued(ref="k1", recipient="r", page_id="p", alert_ids=["a"]).to_record()
    assert "ts" not in queued  # the journal stamps the append
    del queued["recipient"]
    with pytest.raises(TypeError, match="notification.queued record lacks recipient"):
        parse(queued)
