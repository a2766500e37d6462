"""A restart is the journal replayed through the same `apply`: it rebuilds an equal state, asks
the gateway about open orders, carries out approved plans, and never sends an order again."""

from __future__ import annotations

from rules.execution.messages import Decision, PlanApproved, PlanDue, ProposalsSubmitted, Replay
from rules.model import ActionProposal
from tests.rules.execution_world import World, snapshot, view


def _run_a_day(w: World) -> None:
    """Proposals, refusals, a batch approval, fills, a rejection, an escalation, closes."""
    for k, account in enumerate(("A1", "A2", "A3")):
        w.views[account] = view(account, 20, 60_000)
        p = ActionProposal(f"P{k}", f"alert-{k}", account, "reduce", 0.8, w.now + k)
        w.run(ProposalsSubmitted((p,), "system", {account: w.views[account]}))
    w.decide("approve", ["P0"], "nobody")  # refused
    w.decide("approve", ["P0", "P1"], "ops", request_id="batch-1")
    w.decide("approve", ["P0"], "ops", request_id="batch-1")  # replayed
    for ref in w.machine.state.orders_of["P0"]:
        w.report(ref, "accepted", 0)
        w.report(ref, "filled", 4, price=3000.0)
    w.views["A1"] = view("A1", 16, 60_000)
    w.tick(w.now + 0.2)
    w.decide("reject", ["P2"], "ops", reason="hedged elsewhere")


def test_replaying_the_journal_rebuilds_an_equal_state():
    live = World()
    _run_a_day(live)
    assert live.machine.state.proposals["P0"].state.value == "done"
    assert live.machine.state.proposals["P1"].state.value == "executing"
    restarted = World()
    restarted.views = live.views
    restarted.run(Replay(live.own_records()), live.now + 1)
    assert snapshot(restarted.machine) == snapshot(live.machine)
    assert restarted.machine.counts["rebuilt_records"] == len(live.own_records())


def test_a_restart_never_resends_an_order_and_asks_about_the_open_ones():
    live = World()
    _run_a_day(live)
    [open_ref] = live.machine.state.orders_of["P1"]
    restarted = World()
    restarted.views = live.views
    restarted.run(Replay(live.own_records()), live.now + 1)
    assert restarted.sent == []
    restarted.tick(live.now + 1.1)
    assert [m for m in restarted.sent if "type" not in m] == []  # no order, only questions
    assert {"type": "query", "order_ref": open_ref} in restarted.sent
    # the gateway answers: it holds the order, then fills it
    restarted.report(open_ref, "accepted", 0)
    restarted.report(open_ref, "filled", 4, price=3000.0)
    restarted.views["A2"] = view("A2", 16, 60_000)
    restarted.tick(live.now + 1.3)
    assert restarted.machine.state.proposals["P1"].state.value == "done"
    assert [m for m in restarted.sent if "type" not in m] == []


def test_the_order_refs_come_from_proposal_leg_and_attempt():
    a, b = World(), World()
    for w in (a, b):
        _run_a_day(w)
    assert list(a.machine.state.orders) == list(b.machine.state.orders)


def test_an_approved_proposal_without_a_plan_is_planned_after_the_restart():
    live = World()
    live.views["A1"] = view("A1", 20, 60_000)
    p = ActionProposal("P1", "", "A1", "reduce", 0.8, live.now)
    live.run(ProposalsSubmitted((p,), "system", live.views))
    # approved and journaled, then the process died before the plan
    effects = live.machine.apply(Decision("approve", "ops", ("P1",), ts=live.now,
                                          request_id="r1"), live.now)  # fmt: skip
    live.journal += [r for e in effects if hasattr(e, "records") for r in e.records]
    restarted = World()
    effects = restarted.machine.apply(Replay(live.own_records()), live.now + 1)
    assert [type(e) for e in effects] == [PlanDue] and effects[0].proposal_ids == ("P1",)
    restarted.run(PlanApproved(effects[0].proposal_ids, live.views), live.now + 1)
    assert len(restarted.orders()) == 1


def test_a_replayed_request_is_refused_after_a_restart():
    live = World()
    _run_a_day(live)
    restarted = World()
    restarted.run(Replay(live.own_records()), live.now + 1)
    restarted.views = live.views
    restarted.decide("approve", ["P1"], "ops", request_id="batch-1")
    assert restarted.kinds("refusal")[-1]["code"] == "REPLAYED_REQUEST"
