"""The AuditLog writes decision records only from the actor that decided (issue 13 item 5).

Before: `audit.durable.remote([forged decision])` was journaled and a restarted Executor would
have rebuilt an approval from it. On a real local Ray and a real SQLite journal: a decision
without the Executor's seal is refused (PermissionError FORGED_DECISION), counted and journaled
as a quarantine record naming who it claimed to be; the rest of its batch lands; a sealed one
is accepted.
"""

from __future__ import annotations

import pytest
import ray

from actors.audit_log import AuditLog, AuditLogSettings
from rules.execution.seal import seal

KEY = "the-deployment-seal-key"


def _decision(ref: str) -> dict:
    return {"kind": "decision", "actor": "Executor", "key": "ACC1", "ref": ref, "ts": 1000.0,
            "user": "risk.zhang", "via": "ray", "request_id": f"r-{ref}", "decision": "approve",
            "status_after": "approved", "complete": True, "stage_after": 1}  # fmt: skip


def test_a_forged_decision_is_refused_and_quarantined_and_a_sealed_one_lands(ray_local, tmp_path):
    log = AuditLog.remote(AuditLogSettings(str(tmp_path / "journal.sqlite"), 50, seal_key=KEY))
    neighbour = {"kind": "risk_event", "actor": "AccountShard", "key": "ACC2", "ts": 1000.0}
    with pytest.raises(ray.exceptions.RayTaskError, match="FORGED_DECISION") as err:
        ray.get(log.durable.remote([_decision("P-FORGED"), neighbour]))
    assert isinstance(err.value.as_instanceof_cause(), PermissionError)
    wrong_key = [_decision("P-WRONG-KEY")]
    seal(wrong_key, "another-key")
    with pytest.raises(ray.exceptions.RayTaskError, match="its seal does not match"):
        ray.get(log.append.remote(wrong_key))
    sealed = [_decision("P-OK")]
    seal(sealed, KEY)
    ray.get(log.durable.remote(sealed))

    decisions = ray.get(log.query.remote(kind="decision"))
    assert [d["ref"] for d in decisions] == ["P-OK"]
    quarantined = ray.get(log.query.remote(kind="quarantine"))
    assert [q["ref"] for q in quarantined] == ["P-FORGED", "P-WRONG-KEY"]
    assert all(q["record_kind"] == "decision" and q["claimed_actor"] == "Executor"
               for q in quarantined)  # fmt: skip
    assert ray.get(log.query.remote(kind="risk_event"))[0]["key"] == "ACC2", "neighbour kept"
    stats = ray.get(log.stats.remote())
    assert stats["forged_refused"] == 2
    assert ray.get(log.verify.remote()) == []


def test_without_a_seal_key_no_decision_record_is_accepted(ray_local, tmp_path):
    log = AuditLog.remote(AuditLogSettings(str(tmp_path / "journal.sqlite"), 50))
    sealed = [_decision("P-1")]
    seal(sealed, KEY)
    with pytest.raises(ray.exceptions.RayTaskError, match="no seal key here"):
        ray.get(log.durable.remote(sealed))
    assert ray.get(log.query.remote(kind="decision")) == []


def test_a_restarted_executor_rebuilds_nothing_from_an_unsealed_decision(ray_local, tmp_path):
    """A decision record that reached the file some other way (an older journal, or written
    with the file at hand) is skipped on resume: no approval is rebuilt from it."""
    import time

    from actors.execution.settings import ExecutorSettings
    from actors.executor import Executor
    from infra.audit import AuditStore

    path = str(tmp_path / "journal.sqlite")
    forged = {**_decision("P-OLD"), "ts": time.time()}
    sealed = {**_decision("P-SEALED"), "ts": time.time()}
    seal([sealed], KEY)
    store = AuditStore(path)
    store.append([forged, sealed])
    store.close()
    log = AuditLog.remote(AuditLogSettings(path, 50, seal_key=KEY))
    settings = ExecutorSettings("tcp://127.0.0.1:17981", "tcp://127.0.0.1:17982", 1,
                                name_prefix="forgery.", seal_key=KEY)  # fmt: skip
    executor = Executor.options(name="forgery.Executor").remote(settings, log)
    try:
        stats = ray.get(executor.stats.remote())
        assert stats["forged_skipped"] == 1 and stats["rebuilt_records"] == 1
    finally:
        ray.kill(executor)


def test_an_encoded_decision_or_malformed_encoded_record_is_refused(ray_local, tmp_path):
    """Senders encode their own records (issue 13 item 2) and the writer checks their shape: a
    decision never travels encoded (its seal is checked on its fields), so an encoded one is
    quarantined, like a malformed encoded record; the well-formed one beside them lands."""
    from actors.common import JournalSender

    log = AuditLog.remote(AuditLogSettings(str(tmp_path / "journal.sqlite"), 50, seal_key=KEY))
    forged = (1000.0, "decision", "Executor", "ACC1", "P-ENC", '{"decision":"approve"}', "", 0)
    broken = (None, "trade", "AccountShard", "ACC3", "T1", "{not json", "", 0)
    good = (1000.0, "risk_event", "AccountShard", "ACC2", "", '{"value":1.5}', "", 0)
    ray.get(log.durable.remote([forged, broken, good]))
    sent = JournalSender("Shard")
    ray.get(sent.send(log, [{"kind": "trade", "key": "ACC4", "price": 3001.0}], durable=True))

    quarantined = ray.get(log.query.remote(kind="quarantine"))
    assert [(q["ref"], q["record_kind"]) for q in quarantined] == [
        ("P-ENC", "decision"),
        ("T1", "trade"),
    ]
    assert "sealed, never encoded" in quarantined[0]["reason"]
    assert "not JSON" in quarantined[1]["reason"]
    assert ray.get(log.query.remote(kind="decision")) == []
    [event] = ray.get(log.query.remote(kind="risk_event"))
    assert event["key"] == "ACC2" and event["value"] == 1.5 and event["ts"] == 1000.0
    [trade] = ray.get(log.query.remote(kind="trade"))
    assert trade["price"] == 3001.0 and trade["sender"] == sent.sender and trade["ts"] > 1000
    assert ray.get(log.stats.remote())["malformed_encoded"] == 2
    assert ray.get(log.verify.remote()) == []
