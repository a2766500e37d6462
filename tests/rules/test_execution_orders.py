"""The execution machine's order half without Ray: plan, outbox order, reports, status queries,
resends under the same ref, re-pricing, verification and its failure reasons, margin calls and
freezes."""

from __future__ import annotations

from rules.execution.messages import ExecutionSettings, Journal, ProposalsSubmitted, SendOrders
from rules.model import ActionProposal
from tests.rules.execution_world import World, view


def _approved(w: World, kind="reduce", target=0.8, lots=20, equity=60_000.0) -> tuple[str, str]:
    w.views["A1"] = view("A1", lots, equity)
    p = ActionProposal("P1", "alert-1", "A1", kind, target, w.now)
    w.run(ProposalsSubmitted((p,), "system", {"A1": w.views["A1"]}))
    w.decide("approve", ["P1"], "ops")
    refs = w.machine.state.orders_of.get("P1", [])
    return "P1", refs[0] if refs else ""


def test_plan_and_orders_are_journaled_durably_before_they_are_sent():
    w = World()
    w.views["A1"] = view("A1", 20, 60_000)
    p = ActionProposal("P1", "", "A1", "reduce", 0.8, w.now)
    w.run(ProposalsSubmitted((p,), "system", w.views))
    [due] = [
        e for e in w.machine.apply(_decision("P1", w.now), w.now) if type(e).__name__ == "PlanDue"
    ]
    from rules.execution.messages import PlanApproved

    effects = w.machine.apply(PlanApproved(due.proposal_ids, w.views), w.now)
    kinds = [type(e).__name__ for e in effects]
    journal = next(e for e in effects if isinstance(e, Journal))
    assert journal.durable and kinds.index("Journal") < kinds.index("SendOrders")
    assert [r["kind"] for r in journal.records] == ["plan", "account_mark", "order"]
    [send] = [e for e in effects if isinstance(e, SendOrders)]
    # only the CTP fields go on the wire (the typed Order)
    assert set(send.messages[0]) == {
        "order_ref", "proposal_id", "account_id", "instrument", "direction", "offset", "volume",
        "limit_price", "created_ts",
    }  # fmt: skip
    # 12,000 of margin to free at 3,000 a lot: 4 lots
    assert send.messages[0]["volume"] == 4 and send.messages[0]["direction"] == "short"


def _decision(pid, now):
    from rules.execution.messages import Decision

    return Decision("approve", "ops", (pid,), ts=now, request_id=f"d-{pid}")


def test_fill_then_verification_closes_done_with_the_figures_after():
    w = World()
    pid, ref = _approved(w)
    assert w.machine.state.proposals[pid].state.value == "executing"
    w.report(ref, "accepted", 0)
    w.report(ref, "filled", 4, price=3000.0)
    w.views["A1"] = view("A1", 16, 60_000)  # the shard applied the trade: 80 %
    w.tick(w.now + 0.1)
    [closed] = w.kinds("proposal_closed")
    assert closed["state"] == "done" and closed["filled"] == 4 and closed["orders"] == 1
    assert closed["risk_degree_after"] == 0.8 and closed["positions_after"][0]["volume"] == 16
    assert [r["status"] for r in w.kinds("order_report")] == ["accepted", "filled"]


def test_stale_or_repeated_reports_change_nothing_and_are_not_journaled():
    w = World()
    _pid, ref = _approved(w)
    w.report(ref, "filled", 4)
    w.report(ref, "accepted", 0)  # late
    w.report(ref, "filled", 4)  # twice
    assert [r["status"] for r in w.kinds("order_report")] == ["filled"]
    assert w.machine.state.orders[ref]["status"] == "filled"


def test_silent_gateway_is_queried_and_an_unknown_order_resent_under_the_same_ref():
    w = World(settings=ExecutionSettings(query_after_s=1.0))
    _pid, ref = _approved(w)

    def queries() -> list[dict]:
        return [m for m in w.sent if m.get("type") == "query"]

    w.tick(w.now + 0.5)  # no report yet: ask
    assert queries() == [{"type": "query", "order_ref": ref}]
    w.tick(w.now + 1.0)  # asked 0.5 s ago: wait
    assert len(queries()) == 1
    w.tick(w.now + 1.6)
    assert len(queries()) == 2
    w.report(ref, "unknown", 0)
    assert [o["order_ref"] for o in w.orders()] == [ref, ref]  # same ref: never two orders
    assert w.machine.counts["resent"] == 1
    w.report(ref, "duplicate", 0)  # it was there after all: ask, do not send
    assert len(w.orders()) == 2 and w.sent[-1] == {"type": "query", "order_ref": ref}


def test_an_order_not_yet_sent_is_never_queried():
    """The outbox: a query overtaking its order would be answered "unknown" and the order sent
    twice; the clock asks only about orders the shell has sent."""
    w = World(settings=ExecutionSettings(query_after_s=0.0))
    w.views["A1"] = view("A1", 20, 60_000)
    p = ActionProposal("P1", "", "A1", "reduce", 0.8, w.now)
    w.run(ProposalsSubmitted((p,), "system", w.views))
    from rules.execution.messages import PlanApproved

    w.machine.apply(_decision("P1", w.now), w.now)
    w.machine.apply(PlanApproved(("P1",), w.views), w.now)  # journaled, not sent yet
    w.tick(w.now + 5)
    assert not [m for m in w.sent if m.get("type") == "query"]


def test_unfilled_order_is_cancelled_repriced_further_then_given_up():
    w = World(settings=ExecutionSettings(reprice_after_s=5.0, max_reprices=1, query_after_s=99))
    _pid, ref = _approved(w)
    w.report(ref, "accepted", 0)
    w.tick(w.now + 6)
    assert w.sent[-1] == {"type": "cancel", "order_ref": ref}
    assert w.kinds("order_cancel")[0]["reason"] == "REPRICE"
    w.report(ref, "cancelled", 0)
    w.views["A1"] = view("A1", 20, 60_000, last=2990.0)
    w.tick(w.now + 6.1)
    first, second = w.orders()
    assert second["order_ref"] != ref and second["limit_price"] < first["limit_price"]
    assert w.kinds("order")[-1]["attempt"] == 1
    w.report(second["order_ref"], "accepted", 0)
    w.tick(w.now + 12)
    assert w.kinds("order_cancel")[-1]["reason"] == "GIVE_UP"
    w.report(second["order_ref"], "cancelled", 0)
    w.tick(w.now + 12.1)
    w.tick(w.now + 30)  # verification deadline passes
    [closed] = w.kinds("proposal_closed")
    assert closed["state"] == "failed"
    assert (
        closed["reason"].startswith("TARGET_NOT_MET") and "UNFILLED: 2 order(s)" in closed["reason"]
    )


def test_no_view_at_plan_time_fails_the_proposal():
    w = World()
    w.views["A1"] = view("A1", 20, 60_000)
    p = ActionProposal("P1", "", "A1", "reduce", 0.8, w.now)
    w.run(ProposalsSubmitted((p,), "system", w.views))
    del w.views["A1"]
    w.decide("approve", ["P1"], "ops")
    [closed] = w.kinds("proposal_closed")
    assert closed["state"] == "failed" and closed["reason"].startswith("NO_VIEW")


def test_margin_call_notifies_and_closes_on_deposit_or_fails_at_the_deadline():
    w = World()
    pid, _ = _approved(w, kind="margin_call")
    [call] = w.kinds("margin_call")
    assert call["amount"] > 0 and w.notified[0].rule_id == "action.margin_call"
    assert not w.orders()
    w.tick(w.now + 1)
    assert not w.kinds("proposal_closed")
    w.views["A1"] = view("A1", 20, 120_000)  # deposited: 50 %
    w.tick(w.now + 2)
    assert w.kinds("proposal_closed")[0]["state"] == "done"
    w2 = World()
    _approved(w2, kind="margin_call")
    w2.tick(call["deadline_ts"] + 1)
    [closed] = w2.kinds("proposal_closed")
    assert closed["state"] == "failed" and closed["reason"].startswith("MARGIN_CALL_UNMET")
    assert pid == "P1"


def test_freeze_is_confirmed_by_the_gateway_or_fails_unconfirmed():
    w = World()
    _approved(w, kind="freeze")
    assert w.sent == [{"type": "trading_state", "account_id": "A1", "state": "REDUCING"}]
    w.run(_state_report("A1"))
    w.tick(w.now + 0.1)
    assert w.kinds("proposal_closed")[0]["state"] == "done"
    w2 = World()
    _approved(w2, kind="freeze")
    w2.tick(w2.now + 1)
    w2.tick(w2.now + 2.5)  # the command again: the confirmation may have been lost
    assert len([m for m in w2.sent if m.get("type") == "trading_state"]) >= 2
    w2.tick(w2.now + 11)
    assert w2.kinds("proposal_closed")[0]["reason"].startswith("TRADING_STATE_NOT_CONFIRMED")


def _state_report(account):
    from rules.execution.messages import OrderReports

    return OrderReports(({"status": "trading_state", "account_id": account, "state": "REDUCING"},))


def test_a_position_locked_at_limit_down_is_skipped_and_the_failure_says_so():
    w = World(settings=ExecutionSettings(verify_timeout_s=5.0))
    locked = view("A1", 20, 60_000)
    locked["positions"][0]["lower_limit"] = 3000.0  # last == limit-down: a long cannot be sold
    w.views["A1"] = locked
    p = ActionProposal("P1", "", "A1", "reduce", 0.8, w.now)
    w.run(ProposalsSubmitted((p,), "system", w.views))
    out = w.decide("approve", ["P1"], "ops")
    assert out["planned"]["P1"]["orders"] == 0 and out["planned"]["P1"]["skipped"]
    assert not w.orders()
    w.tick(w.now + 6)
    [closed] = w.kinds("proposal_closed")
    assert closed["state"] == "failed" and "LIMIT_LOCKED: 1 position(s)" in closed["reason"]
