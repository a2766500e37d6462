"""A journal that a poisoned record cannot corrupt or empty (issue 13, item 2).

Before: a trade with `ts=NaN` was stored with a NULL ts and `audit verify` reported "record
edited" forever (a false tamper alarm); a 990-deep field raised RecursionError in the writer,
which dropped the whole batch. Now a non-finite number is replaced and flagged (`nonfinite`),
and an unwritable record alone becomes a `quarantine` record with the reason.
"""

from __future__ import annotations

import math
import time

import ray

from actors.audit_log import AuditLog, AuditLogSettings
from infra.audit import QUARANTINE, AuditStore


def _deep(n: int) -> list:
    node: list = []
    for _ in range(n):
        node = [node]
    return node


def test_non_finite_numbers_never_reach_the_journal_and_verify_stays_clean(tmp_path):
    store = AuditStore(tmp_path / "j.sqlite")
    before = time.time()
    store.append(
        [
            {"kind": "trade", "key": "A1", "ref": "t1", "ts": float("nan"), "price": 3000.0},
            {"kind": "trade", "key": "A1", "ref": "t2", "ts": 1.7e9, "price": float("inf"),
             "legs": [{"volume": float("-inf")}]},
            {"kind": "trade", "key": "A1", "ref": "t3", "ts": "soon"},
        ]
    )  # fmt: skip
    assert store.verify() == []
    t1, t2, t3 = store.query(kind="trade")
    assert math.isfinite(t1["ts"]) and t1["ts"] >= before and t1["nonfinite"] == ["ts"]
    assert (t2["price"], t2["legs"][0]["volume"]) == ("inf", "-inf")
    assert t2["nonfinite"] == ["price", "legs[0].volume"] and t2["ts"] == 1.7e9
    assert t3["nonfinite"] == ["ts"]


def test_an_unserializable_record_is_quarantined_alone(tmp_path):
    store = AuditStore(tmp_path / "j.sqlite")
    store.append(
        [
            {"kind": "alert", "key": "A1", "ref": "a1"},
            {"kind": "alert", "key": "A2", "ref": "a2", "deep": _deep(5000)},
            {"kind": "alert", "key": "A3", "ref": "a3"},
        ]
    )
    rows = store.query()
    assert [(r["kind"], r["ref"]) for r in rows] == [
        ("alert", "a1"), (QUARANTINE, "a2"), ("alert", "a3"),
    ]  # fmt: skip
    assert rows[1]["record_kind"] == "alert" and "RecursionError" in rows[1]["reason"]
    assert store.verify() == []


def test_the_audit_log_keeps_the_neighbours_of_a_poisoned_record(ray_local, tmp_path):
    path = str(tmp_path / "j.sqlite")
    log = AuditLog.remote(AuditLogSettings(path=path, batch_ms=50))
    try:
        records = [{"kind": "risk_event", "key": f"A{i}", "ref": f"e{i}"} for i in range(20)]
        records[7]["deep"] = _deep(990)
        records[11]["ts"] = float("nan")
        ray.get(log.append.remote(records))
        ray.get(log.flush.remote())
        rows = ray.get(log.query.remote())
        assert [r["ref"] for r in rows] == [f"e{i}" for i in range(20)]
        assert rows[7]["kind"] == QUARANTINE and rows[11]["nonfinite"] == ["ts"]
        assert ray.get(log.verify.remote()) == []
        assert ray.get(log.figures.remote())["lag_ms"] > 0  # journal_lag_ms, append to commit
    finally:
        ray.kill(log)


def test_a_durable_kind_is_on_disk_when_append_returns(ray_local, tmp_path):
    """Before: every append waited in the writer's memory for batch_ms, so a kill of the
    AuditLog lost acknowledged alerts and orders. Now a DURABLE kind commits before the call
    returns (with everything queued before it); a QUEUED kind says it is fire-and-forget."""
    from infra.journal_kinds import DURABLE, QUEUED, durability

    assert (durability("alert"), durability("order"), durability("risk_event")) == (
        DURABLE, DURABLE, QUEUED,
    )  # fmt: skip
    path = str(tmp_path / "j.sqlite")
    log = AuditLog.options(max_restarts=0).remote(AuditLogSettings(path=path, batch_ms=600_000))
    ray.get(log.append.remote([{"kind": "risk_event", "key": "A1", "ref": "e1"}]))
    ray.get(log.append.remote([{"kind": "alert", "key": "A1", "ref": "a1"}]))
    ray.get(log.append.remote([{"kind": "risk_event", "key": "A1", "ref": "e2"}]))
    ray.kill(log)  # the process dies with e2 still queued
    store = AuditStore(path)
    assert [(r["kind"], r["ref"]) for r in store.query()] == [
        ("risk_event", "e1"), ("alert", "a1"),
    ]  # fmt: skip
    assert store.verify() == []
