"""Issue 8's audit figure: one trading day of one million journal records — appended in the
AuditLog writer's batches, searched by account and time from the indexes, and answered with the
full audit report of the day (chain verified link by link, counts, KPIs, every alert's outcome).

The records have the shapes the running system writes (risk events, alerts, notifications,
acknowledgements, proposals, decisions, plans, orders, reports, trades, closings, figures), in
the proportions of a day with a few tens of thousands of alerts among 20,000 accounts.
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from infra.audit import AuditStore
from infra.audit_archive import day_bounds
from infra.reports.day import day_report
from infra.reports.replay import replay_alert

NAME = "audit-1m"
TARGETS = {"append_per_s": (">", 30_000)}  # issue 13
DESCRIPTION = "1,000,000 journal records of one day: append, indexed search, full day audit report"
DAY = "20261201"
ACCOUNTS = 20_000
RULE = "account.risk_degree.warn"
BATCH = 2_000


def _alert_life(rng: random.Random, i: int, t: float) -> list[dict[str, Any]]:
    a = f"ACC{rng.randrange(ACCOUNTS):06d}"
    al, pid, oref = f"AL{i:07d}", f"P{i:07d}", f"O{i:07d}"
    inst = rng.choice(("rb2601", "hc2601", "i2601", "cu2601", "au2602"))
    px = rng.uniform(500, 80000)
    rd = rng.uniform(0.8, 1.2)

    def r(kind, key, ref, dt, **kw):
        return {"kind": kind, "actor": "bench", "key": key, "ref": ref, "ts": t + dt, **kw}

    state = rng.choice(("done",) * 8 + ("failed", "rejected"))
    return [
        r("risk_event", a, RULE, 0.02, rule_id=RULE, value=rd, threshold=0.8, ingress_ts=t,
          attributes={"risk_degree": rd, "equity": 1e6, "margin": rd * 1e6, "instruments": [inst]}),
        r("alert", a, al, 0.05, rule_id=RULE, ingress_ts=t, severity="warning", value=rd,
          threshold=0.8, title=f"账户 {a} 风险度 {rd:.1%} 超过 80%"),
        r("proposal", a, pid, 0.06, alert_id=al, proposal_kind="reduce", target_risk_degree=0.7,
          proposed_by="system", group_id="g", size=px * 30, preview={"legs": 1}),
        r("account_mark", a, pid, 0.06, phase="proposal", risk_degree=rd, equity=1e6,
          margin=rd * 1e6, prices={inst: px}),
        r("notification.queued", "wecom", f"k{i}", 0.5, alert_ids=[al], text="…"),
        r("notification.delivered", "wecom", f"k{i}", 0.8, alert_ids=[al], latency_ms=750),
        r("alert.acked", "", al, 20.0, alert_ids=[al], by="risk.zhang", via="http"),
        r("decision", a, pid, 30.0, decision="reject" if state == "rejected" else "approve",
          user="risk.wang", via="cli", complete=True, stage_name="risk desk"),
        r("plan", a, pid, 30.1, explanation="reduce: 1 legs", skipped=[]),
        r("order", a, oref, 30.1, proposal_id=pid, instrument=inst, direction="short",
          offset="close", volume=3.0, limit_price=px * 0.999),
        r("order_report", a, oref, 30.2, proposal_id=pid, status="accepted", filled=0.0),
        r("order_report", a, oref, 30.3, proposal_id=pid, status="filled", filled=3.0, price=px),
        r("trade", a, oref, 30.3, instrument=inst, direction="short", offset="close",
          volume=3.0, price=px),
        r("proposal_closed", a, pid, 30.8, state=state, risk_degree_after=0.69,
          equity_after=1e6, margin_after=6.9e5, prices_after={inst: px}),
    ]  # fmt: skip


def _day(n: int, seed: int = 8) -> list[dict[str, Any]]:
    """n records of one day: alert lives (14 records each) among the day's other records."""
    rng = random.Random(seed)
    start, end = day_bounds(DAY)
    open_, close = start + 9 * 3600, start + 15 * 3600
    lives = n * 6 // 10 // 14
    out: list[dict[str, Any]] = []
    for i in range(lives):
        out += _alert_life(rng, i, rng.uniform(open_, close - 60))
    while len(out) < n:  # ordinary trading and figures of the day
        a = f"ACC{rng.randrange(ACCOUNTS):06d}"
        t = rng.uniform(open_, close)
        if rng.random() < 0.5:
            out.append({"kind": "trade", "actor": "AccountShard.0", "key": a, "ref": "",
                        "ts": t, "instrument": "rb2601", "direction": "long", "offset": "open",
                        "volume": 1.0, "price": 3000.0})  # fmt: skip
        else:
            out.append({"kind": "account_mark", "actor": "Executor", "key": a, "ref": "",
                        "ts": t, "phase": "watch", "risk_degree": rng.uniform(0.3, 0.9),
                        "equity": 1e6, "margin": 5e5, "prices": {"rb2601": 3000.0}})  # fmt: skip
    out.sort(key=lambda r: r["ts"])
    return out[:n]


def run(quick: bool = False) -> dict[str, Any]:
    n = 100_000 if quick else 1_000_000
    tmp = Path(tempfile.mkdtemp(prefix="fk-audit-"))
    t0 = time.perf_counter()
    records = _day(n)
    gen_s = time.perf_counter() - t0
    store = AuditStore(tmp / "journal.sqlite")
    t0 = time.perf_counter()
    for k in range(0, n, BATCH):
        store.append(records[k : k + BATCH])
    append_s = time.perf_counter() - t0
    del records
    rng = random.Random(1)
    since, until = day_bounds(DAY)
    times = []
    found = 0
    for _ in range(200):
        a = f"ACC{rng.randrange(ACCOUNTS):06d}"
        lo = rng.uniform(since + 9 * 3600, since + 14 * 3600)
        t0 = time.perf_counter()
        found += len(store.search(account=a, since=lo, until=lo + 3600))
        times.append((time.perf_counter() - t0) * 1000)
    kinds_t0 = time.perf_counter()
    decisions = store.search(account="ACC000042", since=since, until=until, kind="decision")
    kind_ms = (time.perf_counter() - kinds_t0) * 1000
    t0 = time.perf_counter()
    report = day_report(store, DAY)
    report_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    replay_alert(store, report["alerts"][len(report["alerts"]) // 2]["alert_id"])
    replay_ms = (time.perf_counter() - t0) * 1000
    arr = np.array(times)
    return {
        "records": store.count(),
        "append_per_s": round(n / append_s),
        "search_ms": round(float(np.percentile(arr, 50)), 2),
        "search_p99_ms": round(float(np.percentile(arr, 99)), 2),
        "search_rows_per_query": round(found / len(times), 1),
        "search_kind_ms": round(kind_ms, 2),
        "search_kind_rows": len(decisions),
        "report_s": round(report_s, 2),
        "report_alerts": len(report["alerts"]),
        "report_chain_ok": report["chain_ok"],
        "report_closed_loop_rate": report["kpis"]["closed_loop_rate"],
        "replay_alert_ms": round(replay_ms, 1),
        "journal_mb": round((tmp / "journal.sqlite").stat().st_size / 1e6, 1),
        "generate_s": round(gen_s, 1),
    }
