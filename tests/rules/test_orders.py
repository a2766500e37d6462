"""The order state machine ignores stale reports and names the follow-up a report asks for."""

from __future__ import annotations

import math

from rules.actions import limit_price, target_met
from rules.orders import advance, reprice_ticks


def test_forward_transitions_and_stale_reports():
    s = advance("submitted", 0, "accepted", 0)
    assert (s.status, s.changed) == ("accepted", True)
    s = advance("accepted", 0, "partially_filled", 2)
    assert (s.status, s.filled) == ("partially_filled", 2)
    assert not advance("partially_filled", 2, "partially_filled", 1).changed  # older report
    assert not advance("partially_filled", 2, "accepted", 0).changed  # late accepted
    s = advance("partially_filled", 2, "filled", 4)
    assert (s.status, s.filled) == ("filled", 4)
    assert not advance("filled", 4, "cancelled", 4).changed  # terminal stays


def test_duplicate_and_unknown_ask_for_a_query_or_a_resend():
    assert advance("submitted", 0, "duplicate", 0).follow_up == "query"
    assert advance("filled", 3, "duplicate", 0).follow_up == ""
    assert advance("submitted", 0, "unknown", 0).follow_up == "resend"
    assert advance("accepted", 0, "unknown", 0).follow_up == ""


def test_reprice_goes_further_but_stays_inside_the_limits():
    assert [reprice_ticks(5, a) for a in range(4)] == [5, 10, 20, 40]
    assert limit_price(True, 3000, 1, 3150, 2850, 40) == 2960
    assert limit_price(True, 2860, 1, 3150, 2850, 40) == 2850  # clamped at limit-down
    assert limit_price(False, 3140, 1, 3150, 2850, 40) == 3150
    assert limit_price(False, 3000, 1, math.nan, math.nan, 5) == 3005


def test_target_met_per_kind():
    view = {"risk_degree": 0.69, "positions": [{"volume": 2}, {"volume": 0}]}
    assert target_met("reduce", 0.7, view) and not target_met("reduce", 0.6, view)
    assert not target_met("liquidate", 0.7, view) and target_met("liquidate", 0.7, view, 1)
    assert not target_met("reduce", 0.7, {})


def test_executor_state_rebuilds_from_records_and_prunes_closed_ones():
    from rules.execution.state import ExecState

    def rec(kind, ref, ts, **kw):
        return {"kind": kind, "actor": "Executor", "key": "A1", "ref": ref, "ts": ts, **kw}

    records = [
        rec("proposal", "P1", 1.0, account_id="A1", proposal_kind="reduce",
            target_risk_degree=0.7, created_ts=1.0, group_id="g1",
            stages=[{"name": "desk", "roles": ["risk_desk"]}]),
        rec("decision", "P1", 2.0, decision="approve", user="u", request_id="r1",
            stage_index=0, stage_after=1, status_after="approved", complete=True),
        rec("plan", "P1", 2.1, skipped=[]),
        rec("order", "O1", 2.2, proposal_id="P1", account_id="A1", volume=2.0),
        rec("order_report", "O1", 2.3, status="accepted", filled=0.0),
        rec("order_report", "O1", 2.4, status="filled", filled=2.0),
        rec("order_report", "O1", 2.5, status="accepted", filled=0.0),  # late: ignored
    ]  # fmt: skip
    st = ExecState()
    for r in records:
        st.apply(r)
    p = st.proposals["P1"]
    assert (p.state.value, p.decided_by) == ("executing", "u")
    assert st.approval["P1"].stages[0].roles == ("risk_desk",) and "r1" in st.requests
    assert st.orders["O1"]["status"] == "filled" and st.orders_done("P1") and st.filled("P1") == 2
    st.apply(rec("proposal_closed", "P1", 3.0, state="done"))
    assert st.prune(2.0) == 0 and st.prune(10.0) == 1
    assert not st.proposals and not st.orders and not st.groups and "r1" in st.requests
