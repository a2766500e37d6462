"""The closed-loop KPI counts only executed-and-verified actions (issue 19): moot, failed,
expired and rejected outcomes are reported apart, and moot events do not count as needing
action."""

from __future__ import annotations

from infra.audit import AuditStore
from infra.audit_archive import day_bounds
from infra.reports.kpi import compute_kpis

DAY = "20261201"


def _event(t0: float, n: int, state: str, reason: str = "") -> list[dict]:
    def r(kind, ref, dt, **kw):
        return {"kind": kind, "actor": "test", "key": f"A{n}", "ref": ref, "ts": t0 + dt, **kw}

    return [
        r("alert", f"AL{n}", 0.1, rule_id="account.risk_degree.warn", ingress_ts=t0,
          severity="warning", title=f"A{n}", value=0.85, threshold=0.8),
        r("proposal", f"P{n}", 0.2, alert_id=f"AL{n}", proposal_kind="reduce",
          target_risk_degree=0.7, proposed_by="system", group_id="g1", preview={}),
        r("proposal_closed", f"P{n}", 9.0, state=state, reason=reason, alert_id=f"AL{n}"),
    ]  # fmt: skip


def test_only_done_counts_as_closed_loop(tmp_path):
    store = AuditStore(tmp_path / "j.sqlite")
    t0 = day_bounds(DAY)[0] + 10 * 3600
    recs = (
        _event(t0, 1, "done")
        + _event(t0 + 1, 2, "moot", "MOOT: risk degree 57.19% already at or below the target")
        + _event(t0 + 2, 3, "failed", "TARGET_NOT_MET: risk degree 75.00% > target 70.00%")
        + _event(t0 + 3, 4, "rejected", "EXPIRED: no decision within 600 s")
        + _event(t0 + 4, 5, "rejected", "REJECTED by risk.wang: hedged elsewhere")
    )
    store.append(sorted(recs, key=lambda r: r["ts"]))
    k = compute_kpis(store, *day_bounds(DAY))
    assert k["proposal_states"] == {
        "done": 1, "moot": 1, "failed": 1, "expired": 1, "rejected": 1,
    }  # fmt: skip
    assert (k["executed"], k["moot"], k["failed"], k["expired"]) == (1, 1, 1, 1)
    # five events, one moot (needed nothing when it came to it), one executed and verified
    assert (k["needed_action"], k["closed"]) == (4, 1)
    assert k["closed_loop_rate"] == 0.25
    assert k["event_outcomes"] == {
        "done": 1, "moot": 1, "failed": 1, "expired": 1, "rejected": 1,
    }  # fmt: skip
