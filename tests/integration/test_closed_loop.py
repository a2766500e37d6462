"""The closed loop on a real local Ray: shock → alerts → proposals → batch approval by a person
of the roster → orders on the simulated exchange → fills → verified figures → journal, whose
chain verifies and from which the KPIs and the replay report are computed."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import ray

from infra.audit import AuditStore
from infra.reports.kpi import compute_kpis
from infra.reports.replay import replay_alert
from infra.specs import load_contract_table
from rules.approval import sign_request
from tests.integration.harness import Harness, account_at_risk, start_harness
from tests.integration.signing import approve, decide
from tests.zmq_util import wait_until

RB, CU = "rb2601", "cu2601"
RB_PRICE, CU_PRICE = 3000.0, 80000.0
N = 100
TARGET = 0.7  # the harness rule: risk degree > 80% proposes reduce to 70%

APPROVAL = {
    "users": [
        {"name": "risk.zhang", "roles": ["risk_desk"]},
        {"name": "risk.wang", "roles": ["risk_desk"]},
        {"name": "biz.li", "roles": ["business_head"]},
        {"name": "exec.chen", "roles": ["executive"]},
    ],
    "policies": [
        {
            "kind": "liquidate",
            "stages": [
                {"name": "risk desk", "roles": ["risk_desk"]},
                {"name": "business head", "roles": ["business_head"], "time_limit_s": 1.0},
                {"name": "executive", "roles": ["executive"]},
            ],
        }
    ],
}


SECRETS = {"risk.wang": "wang-secret", "risk.zhang": "zhang-secret", "biz.li": "li-secret",
           "exec.chen": "chen-secret"}  # fmt: skip


def start_closed_loop(tmp: Path) -> Harness:
    """The system these tests share: a roster with four people and their secrets."""
    secrets = tmp / "secrets.toml"  # outside the repository, as in production
    secrets.write_text("".join(f'"{u}" = "{s}"\n' for u, s in SECRETS.items()))
    return start_harness(
        tmp,
        {RB: RB_PRICE, CU: CU_PRICE},
        ["rb", "cu"],
        approval={**APPROVAL, "secrets_file": str(secrets), "demo_open": False},
        orders={"reprice_after_s": 1.5, "mark_interval_s": 0.5},
    )


@pytest.fixture(scope="module")
def loop(ray_local, tmp_path_factory):
    h = start_closed_loop(tmp_path_factory.mktemp("closed"))
    yield h
    h.stop()


def _flush(loop) -> AuditStore:
    ray.get(loop.system.audit.flush.remote())
    return AuditStore(loop.journal)


def _pending(loop, account_prefix: str) -> list[dict]:
    rows = ray.get(loop.system.executor.pending.remote())
    return [p for p in rows if p["account_id"].startswith(account_prefix)]


def test_shock_on_100_accounts_batch_approval_brings_all_below_target(loop):
    table = load_contract_table()
    accounts = [f"S{i:03d}" for i in range(N)]
    loop.send_accounts(
        [
            account_at_risk(a, RB, "long", 5 + i % 11, RB_PRICE, 0.76 + 0.0003 * i, table)
            for i, a in enumerate(accounts)
        ]
    )
    shards = loop.system.shards
    assert wait_until(lambda: sum(ray.get(s.stats.remote())["accounts"] for s in shards) >= N, 20)
    loop.market.set(**{RB: RB_PRICE * 0.97})
    assert wait_until(lambda: len(_pending(loop, "S")) == N, 30), len(_pending(loop, "S"))
    pending = _pending(loop, "S")
    groups = {p["group_id"] for p in pending}
    assert len(groups) == 1, groups  # one shock, one batch group

    executor = loop.system.executor
    outcome = decide(executor, "approve", [], "risk.zhang", SECRETS["risk.zhang"],
                     group=groups.pop())  # fmt: skip
    assert "refused" not in outcome and len(outcome["results"]) == N
    assert all(r["state"] == "executing" and r["orders"] >= 1 for r in outcome["results"])

    def closed() -> bool:
        states = [ray.get(executor.proposal.remote(p["proposal_id"]))["state"] for p in pending[:1]]
        return states == ["done"] and ray.get(executor.stats.remote())["states"].get("done") == N

    assert wait_until(closed, 30), ray.get(executor.stats.remote())
    by_shard = {}
    for s in shards:
        by_shard.update(ray.get(s.risk_degrees.remote()))
    assert all(by_shard[a] <= TARGET + 1e-9 for a in accounts), max(by_shard[a] for a in accounts)

    store = _flush(loop)
    wanted = {"risk_event", "alert", "proposal", "decision", "plan", "order", "order_report",
              "trade", "proposal_closed", "account_mark"}  # fmt: skip

    def journaled() -> bool:
        _flush(loop)
        return all(wanted <= {r["kind"] for r in store.search(account=a)} for a in accounts)

    assert wait_until(journaled, 10)
    assert store.verify() == []
    kpis = compute_kpis(store, 0, time.time() + 1)
    assert kpis["needed_action"] >= N and kpis["closed_loop_rate"] == 1.0
    assert kpis["executed"] >= N

    alert_id = next(r["alert_id"] for r in store.search(account=accounts[0], kind="proposal"))
    report = replay_alert(store, alert_id)
    steps = [s["step"] for s in report["timeline"]]
    for step in ("trigger", "alert", "proposal", "decision", "order", "fill", "closed"):
        assert step in steps, steps
    assert report["figures_after"]["risk_degree"] <= TARGET + 1e-9
    assert report["series"]["risk_degree"] and report["series"]["prices"][RB]


def test_limit_locked_contract_is_skipped_with_reason(loop):
    table = load_contract_table()
    rb = RB_PRICE * 0.97
    snap = account_at_risk("LK1", RB, "long", 10, rb, 0.75, table)
    snap["positions"].append(
        {"instrument": CU, "direction": "long", "volume": 2, "cost_price": CU_PRICE}
    )
    margin = sum(
        p["volume"] * price * table.spec(p["instrument"]).multiplier
        * table.spec(p["instrument"]).margin_rate
        for p, price in zip(snap["positions"], (rb, CU_PRICE), strict=True)
    )  # fmt: skip
    # 60% now; the rb loss against its settlement (逐日盯市) is already in the figures.
    snap["pre_balance"] = margin / 0.6 + 10 * (RB_PRICE - rb) * table.spec(RB).multiplier
    loop.send_accounts([snap])
    assert wait_until(lambda: any(ray.get(s.has_account.remote("LK1")) for s in loop.system.shards))
    lower = loop.market.batch().lower_limit[loop.market.batch().instruments.index(CU)]
    loop.market.set(**{CU: float(lower)})  # limit-down: a long cannot be sold
    assert wait_until(lambda: len(_pending(loop, "LK1")) == 1, 20)
    [p] = _pending(loop, "LK1")
    [result] = approve(loop.system.executor, [p["proposal_id"]], "risk.wang", SECRETS)
    assert result["skipped"] and result["skipped"][0]["instrument"] == CU
    assert result["skipped"][0]["reason"].startswith("LIMIT_LOCKED")
    detail = ray.get(loop.system.executor.proposal.remote(p["proposal_id"]))
    assert {o["instrument"] for o in detail["orders"]} == {RB}
    store = _flush(loop)
    [plan] = store.query(kind="plan", ref=p["proposal_id"])
    assert plan["skipped"][0]["reason"].startswith("LIMIT_LOCKED")


def test_refusals_are_journaled_with_reason_codes(loop):
    executor = loop.system.executor
    table = load_contract_table()
    loop.send_accounts([account_at_risk("M01", RB, "long", 4, RB_PRICE * 0.97, 0.5, table)])
    assert wait_until(lambda: any(ray.get(s.has_account.remote("M01")) for s in loop.system.shards))
    made = ray.get(executor.propose.remote("M01", "liquidate", "risk.zhang", 0.8, "client default"))
    pid = made["proposal_id"]
    refused = {}
    for user in ("risk.zhang", "biz.li", "mallory"):
        [r] = approve(executor, [pid], user, SECRETS)
        refused[user] = r["refused"].split(":")[0]
    assert refused == {"risk.zhang": "OWN_PROPOSAL", "biz.li": "WRONG_ROLE",
                       "mallory": "UNKNOWN_USER"}  # fmt: skip
    request = {"action": "approve", "ids": [pid], "group": "", "user": "risk.wang",
               "reason": "", "request_id": "req-1", "ts": round(time.time(), 3)}  # fmt: skip
    request["signature"] = sign_request(SECRETS["risk.wang"], **request)
    first = ray.get(executor.decide.remote({**request, "via": "cli"}))
    assert "refused" not in first and "stage 2/3" in first["results"][0]["stage"]
    again = ray.get(executor.decide.remote({**request, "via": "cli"}))
    assert again["refused"] == "REPLAYED_REQUEST"
    [same] = approve(executor, [pid], "risk.wang", SECRETS)
    assert same["refused"].startswith("WRONG_ROLE")  # stage 2 is the business head's
    [biz] = approve(executor, [pid], "biz.li", SECRETS)
    assert "refused" not in biz and "stage 3/3" in biz["stage"]
    [ex] = approve(executor, [pid], "exec.chen", SECRETS)
    assert ex["state"] == "executing" and ex["orders"] == 1

    store = _flush(loop)
    codes = [r["code"] for r in store.query(kind="refusal", key="M01")]
    assert codes == ["OWN_PROPOSAL", "WRONG_ROLE", "UNKNOWN_USER", "REPLAYED_REQUEST", "WRONG_ROLE"]
    decisions = store.query(kind="decision", ref=pid)
    assert [d["user"] for d in decisions] == ["risk.wang", "biz.li", "exec.chen"]
