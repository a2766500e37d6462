"""Decisions over signed HTTP, re-pricing of unfilled orders, margin calls and freezes — on the
same real system as test_closed_loop (its module fixture is shared by importing it)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid

import pytest
import ray

from infra.specs import load_contract_table
from rules.approval import sign_request
from tests.integration.harness import account_at_risk
from tests.integration.signing import approve
from tests.integration.test_closed_loop import RB, SECRETS, _flush, start_closed_loop
from tests.zmq_util import wait_until


@pytest.fixture(scope="module")
def loop(ray_local, tmp_path_factory):
    h = start_closed_loop(tmp_path_factory.mktemp("actions"))
    yield h
    h.stop()


def _account(loop, account_id: str, lots: float = 6, risk: float = 0.5) -> None:
    table = load_contract_table()
    price = loop.market.batch().last[loop.market.batch().instruments.index(RB)]
    loop.send_accounts([account_at_risk(account_id, RB, "long", lots, float(price), risk, table)])
    assert wait_until(
        lambda: any(ray.get(s.has_account.remote(account_id)) for s in loop.system.shards)
    )
    shard = next(s for s in loop.system.shards if ray.get(s.has_account.remote(account_id)))
    assert wait_until(  # marked at a market price, not only loaded
        lambda: ray.get(shard.account.remote(account_id))["positions"][0]["last"] > 0
    )


def _state(loop, pid: str) -> str:
    return ray.get(loop.system.executor.proposal.remote(pid))["state"]


def _post(url: str, body: dict, token: str = "") -> tuple[int, dict]:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST" if body else "GET",
        headers={"Content-Type": "application/json",
                 **({"Authorization": f"Bearer {token}"} if token else {})},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _signed(user: str, pid: str, secret: str, request_id: str | None = None) -> dict:
    fields = {"action": "approve", "user": user, "ids": [pid], "group": "", "reason": "",
              "ts": round(time.time(), 3), "request_id": request_id or uuid.uuid4().hex}  # fmt: skip
    return {**fields, "signature": sign_request(secret, **fields)}


def test_signed_decision_and_its_refusals(loop):
    """The person-signed path (what `fengkong approve --as` sends; the HTTP route went with the
    stdlib approval server, issue 16 — the console's /api/decisions takes a person's token)."""
    executor = loop.system.executor
    _account(loop, "H01")
    pid = ray.get(executor.propose.remote("H01", "reduce", "risk.zhang", 0.3))["proposal_id"]

    def send(request: dict) -> dict:
        return ray.get(executor.decide.remote({**request, "via": "cli"}))

    unsigned = send({**_signed("risk.wang", pid, "x"), "signature": ""})
    assert unsigned["refused"] == "UNSIGNED_REQUEST", unsigned
    assert send(_signed("risk.wang", pid, "wrong"))["refused"] == "BAD_SIGNATURE"
    good = _signed("risk.wang", pid, SECRETS["risk.wang"])
    body = send(good)
    assert not body.get("refused") and body["results"][0]["orders"] >= 1, body
    assert send(good)["refused"] == "REPLAYED_REQUEST"
    assert wait_until(lambda: _state(loop, pid) == "done", 15)
    store = _flush(loop)
    refusals = [(r["via"], r["code"]) for r in store.query(kind="refusal", key="H01")]
    assert refusals == [("cli", "UNSIGNED_REQUEST"), ("cli", "BAD_SIGNATURE"),
                        ("cli", "REPLAYED_REQUEST")]  # fmt: skip
    [decision] = store.query(kind="decision", ref=pid)
    assert decision["signed"] and decision["user"] == "risk.wang" and decision["via"] == "cli"


def test_unfilled_order_is_cancelled_and_repriced(loop):
    executor = loop.system.executor
    _account(loop, "RP1", lots=6)
    pid = ray.get(executor.propose.remote("RP1", "reduce", "risk.zhang", 0.2))["proposal_id"]
    loop.orders.halt(RB)  # a trading halt: orders wait unfilled
    try:
        [res] = approve(executor, [pid], "risk.wang", SECRETS)
        assert res["orders"] == 1

        def replaced() -> bool:
            orders = ray.get(executor.proposal.remote(pid))["orders"]
            return any(o["attempt"] >= 1 and o["status"] == "accepted" for o in orders)

        assert wait_until(replaced, 10)
    finally:
        loop.orders.resume(RB)
    assert wait_until(lambda: _state(loop, pid) == "done", 15)
    orders = sorted(ray.get(executor.proposal.remote(pid))["orders"], key=lambda o: o["attempt"])
    assert len({o["order_ref"] for o in orders}) == len(orders) >= 2
    assert [o["status"] for o in orders[:-1]] == ["cancelled"] * (len(orders) - 1)
    assert all(o["cancel_reason"] == "REPRICE" for o in orders[:-1])
    assert orders[-1]["status"] == "filled"
    prices = [o["limit_price"] for o in orders]
    assert prices == sorted(prices, reverse=True) and prices[0] > prices[-1]  # further each time
    assert sum(o["filled"] for o in orders) == orders[0]["volume"]
    assert loop.orders.stats["duplicates"] == 0


def test_margin_call_closes_when_the_deposit_arrives(loop):
    executor = loop.system.executor
    _account(loop, "MC1", lots=6, risk=0.9)
    pid = ray.get(executor.propose.remote("MC1", "margin_call", "risk.zhang", 0.7))["proposal_id"]
    [res] = approve(executor, [pid], "risk.wang", SECRETS)
    assert res["state"] == "executing" and "deposit" in res["explanation"]
    amount = ray.get(executor.proposal.remote(pid))["plan"]["margin_call"]
    assert amount > 0
    time.sleep(0.5)
    assert _state(loop, pid) == "executing"  # waits for the money, not for time
    loop.send_accounts([{"type": "deposit", "account_id": "MC1", "amount": amount + 1.0}])
    assert wait_until(lambda: _state(loop, pid) == "done", 15)
    store = _flush(loop)
    [call] = store.query(kind="margin_call", ref=pid)
    assert call["amount"] == amount and call["deadline_ts"] > call["ts"]


def test_freeze_sets_trading_state_reducing_at_the_gateway(loop):
    executor = loop.system.executor
    _account(loop, "FR1")
    pid = ray.get(executor.propose.remote("FR1", "freeze", "risk.zhang"))["proposal_id"]
    approve(executor, [pid], "risk.wang", SECRETS)
    assert wait_until(lambda: _state(loop, pid) == "done", 10)
    assert "FR1" in loop.orders.reducing()
    store = _flush(loop)
    acked = [r for r in store.query(kind="trading_state", ref=pid) if r.get("acked")]
    assert acked and acked[0]["state"] == "REDUCING"


def test_approval_time_limit_escalates_through_the_notifier(loop):
    executor = loop.system.executor
    _account(loop, "E01")
    pid = ray.get(executor.propose.remote("E01", "liquidate", "risk.zhang"))["proposal_id"]
    [first] = approve(executor, [pid], "risk.wang", SECRETS)
    assert "stage 2/3 business head" in first["stage"]
    store = _flush(loop)

    def escalated() -> bool:
        _flush(loop)
        return any(pid in r["proposal_ids"] for r in store.query(kind="approval_escalated"))

    assert wait_until(escalated, 10)
    [rec] = [r for r in store.query(kind="approval_escalated") if pid in r["proposal_ids"]]
    assert rec["stage_name"] == "business head" and rec["waited_s"] >= 1.0
    assert wait_until(
        lambda: any("approval overdue" in m["body"] for m in loop.sink.messages("wecom")), 15
    )
    approve(executor, [pid], "biz.li", SECRETS)
    [done] = approve(executor, [pid], "exec.chen", SECRETS)
    assert done["state"] == "executing"
    assert wait_until(lambda: _state(loop, pid) == "done", 15)


def test_cli_lists_approves_signed_and_rejects(loop, capsys, monkeypatch):
    from app.cli import main

    executor = loop.system.executor
    for a in ("C01", "C02"):
        _account(loop, a)
    ids = [ray.get(executor.propose.remote(a, "reduce", "risk.zhang", 0.3))["proposal_id"]
           for a in ("C01", "C02")]  # fmt: skip
    prefix = ["--prefix", loop.system.prefix]
    assert main(["proposals", *prefix]) == 0
    listed = capsys.readouterr().out
    assert all(pid in listed for pid in ids) and "stage 1/1 risk desk: 0/1" in listed
    monkeypatch.setenv("WANG_SECRET", SECRETS["risk.wang"])
    assert main(["approve", ids[0], "--as", "risk.wang", "--secret-env", "WANG_SECRET",
                 *prefix]) == 0  # fmt: skip
    assert '"orders": 1' in capsys.readouterr().out
    # issue 13 item 5: the CLI no longer sends a decision unsigned (one-line refusal, exit 2)
    assert main(["reject", ids[1], "--reason", "client paid", "--as", "risk.wang", *prefix]) == 2
    assert "no signing secret for risk.wang" in capsys.readouterr().err
    wang = ["--as", "risk.wang", "--secret-env", "WANG_SECRET", *prefix]
    assert main(["reject", ids[1], "--reason", "client paid", *wang]) == 0
    assert _state(loop, ids[1]) == "rejected"
    assert main(["approve", ids[1], *wang]) == 1  # no longer pending
    assert "NOT_PENDING" in capsys.readouterr().out
    store = _flush(loop)
    [signed] = store.query(kind="decision", ref=ids[0])
    assert signed["signed"] and signed["via"] == "cli"
    [closed] = store.query(kind="proposal_closed", ref=ids[1])
    assert closed["state"] == "rejected" and "client paid" in closed["reason"]
