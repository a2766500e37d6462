"""Replay report, KPIs and the day's audit report from a journal with known times."""

from __future__ import annotations

import json

import pytest

from app.cli import main
from infra.audit import AuditStore
from infra.audit_archive import day_bounds
from infra.reports.day import day_report
from infra.reports.html import replay_html, write_report
from infra.reports.kpi import compute_kpis
from infra.reports.replay import replay_alert

DAY = "20261201"
RULE = "account.risk_degree.warn"


def _life(t0: float) -> list[dict]:
    """One alert's life as the system journals it: closed after a fill."""

    def r(kind, key, ref, dt, **kw):
        return {"kind": kind, "actor": "test", "key": key, "ref": ref, "ts": t0 + dt, **kw}

    return [
        r("risk_event", "A1", RULE, 0.05, rule_id=RULE, value=0.85, threshold=0.8, ingress_ts=t0,
          attributes={"risk_degree": 0.85, "equity": 1e6, "margin": 8.5e5}),
        r("alert", "A1", "AL1", 0.1, rule_id=RULE, ingress_ts=t0, severity="warning",
          title="账户 A1 风险度 85%", value=0.85, threshold=0.8),
        r("proposal", "A1", "P1", 0.2, alert_id="AL1", proposal_kind="reduce",
          target_risk_degree=0.7, proposed_by="system", group_id="g1", preview={}),
        r("account_mark", "A1", "P1", 0.2, phase="proposal", risk_degree=0.85, equity=1e6,
          margin=8.5e5, prices={"rb2601": 2910.0}),
        r("notification.delivered", "wecom", "k1", 2.0, alert_ids=["AL1"], recipient="desk"),
        r("alert.acked", "", "page1", 30.0, alert_ids=["AL1"], by="risk.zhang", via="http"),
        r("refusal", "A1", "P1", 50.0, user="biz.li", code="WRONG_ROLE", reason="WRONG_ROLE: x"),
        r("decision", "A1", "P1", 60.0, decision="approve", user="risk.wang", via="cli",
          stage_name="risk desk", complete=True),
        r("plan", "A1", "P1", 60.1, explanation="reduce: 1 legs", skipped=[]),
        r("order", "A1", "O1", 60.1, proposal_id="P1", direction="short", offset="close",
          volume=3.0, instrument="rb2601", limit_price=2905.0, reason="frees margin"),
        r("order_report", "A1", "O1", 60.3, proposal_id="P1", status="filled", filled=3.0,
          price=2908.0),
        r("trade", "A1", "O1", 60.3, instrument="rb2601", direction="short", offset="close",
          volume=3.0, price=2908.0),
        r("proposal_closed", "A1", "P1", 60.8, state="done", reason="", risk_degree_after=0.69,
          equity_after=1e6, margin_after=6.9e5, prices_after={"rb2601": 2906.0},
          positions_after=[{"instrument": "rb2601", "direction": "long", "volume": 7.0}]),
        # a second alert whose proposal is still open and whose page never arrived
        r("alert", "A2", "AL2", 5.0, rule_id=RULE, ingress_ts=t0 + 4.9, severity="warning",
          title="A2", value=0.9, threshold=0.8),
        r("proposal", "A2", "P2", 5.1, alert_id="AL2", proposal_kind="reduce",
          target_risk_degree=0.7, proposed_by="system", group_id="g1", preview={}),
    ]  # fmt: skip


@pytest.fixture
def store(tmp_path):
    s = AuditStore(tmp_path / "j.sqlite")
    t0 = day_bounds(DAY)[0] + 10 * 3600
    s.append(sorted(_life(t0), key=lambda r: r["ts"]))
    return s


def test_replay_alert_timeline_from_trigger_to_figures_after(store):
    rep = replay_alert(store, "AL1")
    steps = [s["step"] for s in rep["timeline"]]
    assert steps == [
        "data in", "trigger", "alert", "proposal", "notification delivered", "acknowledged",
        "refusal", "decision", "plan", "order", "fill", "trade", "closed",
    ]  # fmt: skip
    assert [s["t_plus_s"] for s in rep["timeline"]][-1] == pytest.approx(60.8)
    assert rep["figures_after"]["risk_degree"] == 0.69
    assert [p for _, p in rep["series"]["prices"]["rb2601"]] == [2910.0, 2908.0, 2906.0]
    assert [v for _, v in rep["series"]["risk_degree"]] == [0.85, 0.85, 0.69]
    html = replay_html(rep)
    assert html.count("<svg") == 2 and "<script" not in html and "http" not in html.split("<svg")[0]


def test_kpis_count_closed_loop_and_times(store):
    since, until = day_bounds(DAY)
    k = compute_kpis(store, since, until)
    assert (k["alerts"], k["needed_action"], k["closed"]) == (2, 2, 1)
    assert k["closed_loop_rate"] == 0.5
    assert k["time_to_first_delivery_s"]["p50"] == pytest.approx(2.0)
    assert k["time_to_ack_s"]["max"] == pytest.approx(30.0)
    assert k["time_to_decision_s"]["p50"] == pytest.approx(60.0)
    assert k["time_to_execution_s"]["p50"] == pytest.approx(60.3)
    assert k["delivered_within_60s"] == 0.5
    assert k["proposal_states"] == {"done": 1, "open": 1}


def test_day_report_verifies_the_day_and_lists_alerts(store, tmp_path):
    rep = day_report(store, DAY)
    assert rep["chain_ok"] and rep["records"] == 15
    assert [a["outcome"] for a in rep["alerts"]] == ["done", "open"]
    html, js = write_report(rep, tmp_path / "out", "audit")
    assert 'chain <b class="ok">intact' in html.read_text()
    assert json.loads(js.read_text())["kpis"]["closed_loop_rate"] == 0.5


def test_cli_report_commands(store, tmp_path, capsys):
    out = str(tmp_path / "reports")
    journal = str(store.path)
    assert main(["report", "kpi", "--journal", journal, "--from", "2026-12-01",
                 "--to", "2026-12-01", "--out", out]) == 0  # fmt: skip
    assert '"closed_loop_rate": 0.5' in capsys.readouterr().out
    assert main(["report", "replay", "--journal", journal, "--alert", "AL1", "--out", out]) == 0
    assert (tmp_path / "reports" / "replay-AL1.html").exists()
    assert main(["report", "replay", "--journal", journal, "--alert", "NOPE", "--out", out]) == 1
    assert main(["report", "day", "--journal", journal, "--day", DAY, "--out", out]) == 0
    assert json.loads((tmp_path / "reports" / f"audit-{DAY}.json").read_text())["chain_ok"]
