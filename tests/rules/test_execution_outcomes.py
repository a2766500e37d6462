"""Outcome states that tell the truth (issue 19): an account that no longer breaches when its
approved action would execute closes `moot` with the figures, not `done`; a target is met within
the documented tolerance band; proposals by hand only for accounts the book knows."""

from __future__ import annotations

from rules.execution.messages import ExecutionSettings, ManualProposal, ProposalsSubmitted
from rules.model import ActionProposal
from tests.rules.execution_world import World, view


def _propose(w: World, lots: float = 20, equity: float = 60_000.0) -> str:
    w.views["A1"] = view("A1", lots, equity)  # 20 lots × 3,000 / 60,000 = 100 %
    p = ActionProposal("P1", "alert-1", "A1", "reduce", 0.8, w.now)
    w.run(ProposalsSubmitted((p,), "system", {"A1": w.views["A1"]}))
    return "P1"


def test_an_account_recovered_before_approval_closes_moot_with_its_figures():
    w = World()
    pid = _propose(w)
    w.views["A1"] = view("A1", 14, 60_000)  # 70 %: below the 80 % target when approved
    w.decide("approve", [pid], "ops")
    [closed] = w.kinds("proposal_closed")
    assert closed["state"] == "moot", closed
    assert closed["reason"].startswith("MOOT: risk degree 70.00% already at or below")
    assert closed["orders"] == 0 and closed["risk_degree_after"] == 0.7
    assert w.orders() == [] and w.machine.state.proposals[pid].state.value == "moot"


def test_a_target_is_met_within_the_tolerance_band():
    w = World(settings=ExecutionSettings(verify_timeout_s=10.0, target_tolerance=0.0005))
    pid = _propose(w)
    w.decide("approve", [pid], "ops")
    [ref] = w.machine.state.orders_of[pid]
    w.report(ref, "filled", 4, price=3000.0)
    after = view("A1", 16, 60_000)
    after["risk_degree"] = 0.8001  # 80.01 % against 80 %: one part in ten thousand over
    w.views["A1"] = after
    w.tick(w.now + 0.1)
    [closed] = w.kinds("proposal_closed")
    assert closed["state"] == "done", closed


def test_outside_the_band_the_target_is_not_met():
    w = World(settings=ExecutionSettings(verify_timeout_s=1.0, target_tolerance=0.0005))
    pid = _propose(w)
    w.decide("approve", [pid], "ops")
    [ref] = w.machine.state.orders_of[pid]
    w.report(ref, "filled", 4, price=3000.0)
    after = view("A1", 16, 60_000)
    after["risk_degree"] = 0.801
    w.views["A1"] = after
    w.tick(w.now + 5)
    [closed] = w.kinds("proposal_closed")
    assert closed["state"] == "failed"
    assert closed["reason"].startswith("TARGET_NOT_MET: risk degree 80.10% > target 80.00%")


def test_met_without_a_fill_is_moot_not_done():
    w = World()
    pid = _propose(w)
    w.decide("approve", [pid], "ops")
    [ref] = w.machine.state.orders_of[pid]
    w.report(ref, "cancelled", 0)
    w.views["A1"] = view("A1", 20, 90_000)  # topped up: 66.7 %, no order of ours filled
    w.tick(w.now + 0.1)
    [closed] = w.kinds("proposal_closed")
    assert closed["state"] == "moot" and closed["reason"].endswith("no order filled")


def test_a_proposal_by_hand_for_an_unknown_account_is_refused():
    w = World()
    reply = w.run(ManualProposal("ACC999999", "reduce", "ops", views={}))
    assert reply["refused"].startswith("UNKNOWN_ACCOUNT"), reply
    [refusal] = w.kinds("refusal")
    assert refusal["code"] == "UNKNOWN_ACCOUNT" and not w.machine.state.proposals
