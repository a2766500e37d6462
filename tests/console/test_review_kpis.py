"""The console's 复盘 page counts the closed loop as the KPI report does (issue 19): per Beijing
day, events executed and verified over events that needed action — it read a journal kind that
does not exist (`proposal.closed`), so every day showed 0%, and would have counted moot as done."""

from __future__ import annotations

from app.console.pages_review import kpis


def _event(n: int, ts: float, state: str | None, reason: str = "") -> list[dict]:
    out = [{"kind": "proposal", "ref": f"P{n}", "alert_id": f"AL{n}", "ts": ts}]
    if state is not None:
        out.append({"kind": "proposal_closed", "ref": f"P{n}", "ts": ts + 9, "state": state,
                    "reason": reason})  # fmt: skip
    return out


def test_a_day_counts_done_over_needed_moot_left_out():
    t0 = 1_796_104_800.0  # 2026-12-01 14:00 Beijing
    records = (
        _event(1, t0, "done")
        + _event(2, t0 + 1, "moot", "MOOT: risk degree 57.19% already at or below the target")
        + _event(3, t0 + 2, "failed", "TARGET_NOT_MET: ...")
        + _event(4, t0 + 3, "rejected", "EXPIRED: no decision within 600 s")
        + _event(5, t0 + 4, None)
        + [{"kind": "decision", "ref": "P1", "ts": t0 + 5, "user": "risk.wang"}]
    )
    k = kpis(records)
    [(day, figures)] = k["days"].items()
    assert day == "2026-12-01"
    assert figures == {"n": 4, "closed": 1, "rate": 0.25}
    assert k["people"] == {"risk.wang": [5.0]}
