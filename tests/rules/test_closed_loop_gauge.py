"""The live closed-loop gauge (fengkong_closed_loop_rate, issue 19) counts what the KPI report
counts: executed-and-verified events over events that needed action — a moot proposal (the account
had recovered) is left out, a failed one and one still open count against the rate."""

from __future__ import annotations

import math

from rules.execution.messages import ExecutionSettings, ProposalsSubmitted
from rules.execution.outcomes import closed_loop_rate, event_outcome, proposal_outcome
from rules.model import ActionProposal
from tests.rules.execution_world import World, view


def _world_with_four_alerts() -> World:
    w = World(settings=ExecutionSettings(verify_timeout_s=1.0, query_after_s=1.0))
    proposals = []
    for n in (1, 2, 3, 4):
        acc = f"A{n}"
        w.views[acc] = view(acc, 20, 60_000)  # 20 lots × 3,000 / 60,000 = 100 %
        proposals.append(ActionProposal(f"P{n}", f"alert-{n}", acc, "reduce", 0.8, w.now))
    w.run(ProposalsSubmitted(tuple(proposals), "system", dict(w.views)))
    return w


def test_the_gauge_counts_only_executed_and_verified_events():
    w = _world_with_four_alerts()
    assert w.machine.closed_loop_rate() == 0.0  # four events need action, none taken yet
    w.views["A2"] = view("A2", 14, 60_000)  # recovered to 70 % before the approval: moot
    w.decide("approve", ["P1", "P2", "P3"], "ops")
    refs = {pid: w.machine.state.orders_of[pid][0] for pid in ("P1", "P3")}
    w.report(refs["P1"], "filled", 4, price=3000.0)
    w.report(refs["P3"], "filled", 4, price=3000.0)
    w.views["A1"] = view("A1", 16, 60_000)  # 80 %: target met, verified
    w.views["A3"] = view("A3", 16, 50_000)  # 96 %: filled but the target is not met
    w.tick(w.now + 0.1)
    w.tick(w.now + 5)  # past the verification deadline: A3 fails
    states = {pid: p.state.value for pid, p in w.machine.state.proposals.items()}
    assert states == {"P1": "done", "P2": "moot", "P3": "failed", "P4": "pending"}
    assert w.machine.event_outcomes() == {"done": 1, "moot": 1, "failed": 1, "open": 1}
    # 1 done of 3 that needed action (moot left out; failed and still open count against it),
    # where the old gauge said 3 closed of 4 proposals = 75 %
    assert math.isclose(w.machine.closed_loop_rate(), 1 / 3)
    assert w.machine.stats()["closed_loop_rate"] == w.machine.closed_loop_rate()


def test_an_alert_with_several_proposals_is_one_event():
    assert event_outcome(["done", "moot"]) == "done"
    assert event_outcome(["done", "failed"]) == "failed"
    assert event_outcome(["moot", "moot"]) == "moot"
    assert event_outcome(["done", "open"]) == "open"
    assert event_outcome(["rejected", "moot"]) == "rejected"
    assert proposal_outcome("rejected", "EXPIRED: no decision within 600 s") == "expired"
    assert proposal_outcome(None) == "open"


def test_nothing_needed_action_is_no_rate_not_a_full_one():
    assert closed_loop_rate([]) is None
    assert closed_loop_rate(["moot", "moot"]) is None
    assert closed_loop_rate(["moot", "done", "expired"]) == 0.5
    w = World()
    assert w.machine.closed_loop_rate() is None and w.machine.stats()["closed_loop_rate"] is None
