"""Adaptive rule kinds (issue 18 item 4): vol_scaled_move, fundflow_anomaly and
order_behaviour_anomaly judge each key against its own learned baseline, fire where the
history makes a value unusual (and not before), carry score and baseline to the alert, and
keep their baselines across a restart (snapshot and restore through plain JSON)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from infra import rulesets
from infra.specs import load_contract_table
from rules.engine.alerts import alert_journal_record, alert_title, make_alert
from rules.engine.backtest import MarketReplay, Ticks
from rules.engine.backtest_alerts import alert_record
from rules.engine.evaluator import RuleEngine
from rules.engine.kinds.market_set import MarketRuleSet
from rules.engine.spec import RuleSpec
from rules.fundflow import FlowLedger, book_transfer
from rules.journal_records import AlertRecord, parse
from rules.market_signals import StatsParams
from rules.market_stats import MarketStats
from rules.notify.render import render
from rules.sessions import SessionCalendar

T0 = 1_763_000_000.0  # a data time (seconds)


def vol_rule(**params: object) -> RuleSpec:
    return RuleSpec(id="m.vsm", kind="vol_scaled_move", metric="vol_scaled_move",
                    scope="contract", op=">", threshold=6.0, rearm=2.0,
                    params={"bar_s": 60, "window_bars": 1, "halflife_bars": 60.0,
                            "min_bars": 20, **params})  # fmt: skip


def walk(minutes: int, jump_at: int | None, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """A tick every 5 s of a random walk (0.05% per tick); a +3% jump at minute `jump_at`."""
    rng = np.random.default_rng(seed)
    n = minutes * 12
    logp = np.log(3500.0) + np.cumsum(rng.normal(0, 0.0005, n))
    if jump_at is not None:
        logp[jump_at * 12 :] += 0.03
    return T0 + 5.0 * np.arange(n), np.round(np.exp(logp))


def generated_ticks(ts: np.ndarray, last: np.ndarray) -> Ticks:
    n = ts.size
    nan = np.full(n, np.nan)
    return Ticks(["rb2601"], np.zeros(n, dtype=np.int64), ts, last, np.arange(n, dtype=float),
                 np.full(n, 1e5), last - 1, last + 1, nan, nan, nan)  # fmt: skip


def test_vol_scaled_move_fires_at_the_injected_jump_and_not_before():
    ts, last = walk(180, jump_at=120)
    table = load_contract_table()
    replay = MarketReplay([vol_rule()], table, SessionCalendar.from_table(table), StatsParams())
    events = [e for e in replay.run(generated_ticks(ts, last)) if e.rule_id == "m.vsm"]
    assert events, "the 3% jump (about 17σ of a one-minute move) must fire"
    first = events[0]
    assert T0 + 120 * 60 <= first.ts < T0 + 121 * 60  # at the jump, nothing before it
    ev = first.attributes["evidence"]
    assert ev["score"] > 6.0 and ev["threshold"] == 6.0
    assert 0.0005 < ev["baseline"] < 0.01  # σ of a one-minute move learned from the walk
    assert ev["move"] == pytest.approx(np.log(first.attributes["price"] / last[120 * 12 - 1]),
                                       abs=0.01)  # fmt: skip
    assert "against its own 1-min volatility" in ev["text"]
    line = alert_record(first, "a1")
    assert line["evidence"]["baseline"] == ev["baseline"]  # alerts.jsonl carries it
    quiet = MarketReplay([vol_rule()], table, SessionCalendar.from_table(table), StatsParams())
    assert not [e for e in quiet.run(generated_ticks(*walk(180, None))) if e.rule_id == "m.vsm"]


def test_vol_scaled_move_baseline_survives_a_restart_through_json():
    ts, last = walk(100, jump_at=None)
    params = StatsParams()
    stats, live = MarketStats(params), MarketRuleSet([vol_rule()], params.vol_windows_s)
    stats.add_rows(np.array([1.0]), np.array([0.05]))
    live.add_rows(["rb2601"], ["rb"])
    half = ts.size // 2
    for sig in stats.update(np.zeros(half, dtype=np.int64), last[:half], ts[:half]):
        live.on_slice(sig, np.zeros(sig.rows.size, dtype=np.int64))
    snapshot = json.loads(json.dumps(live.adaptive_state()))
    restored = MarketRuleSet([vol_rule()], params.vol_windows_s)
    assert restored.restore_adaptive(snapshot) == ["m.vsm"]
    restored.add_rows(["rb2601"], ["rb"])  # the contract ticks again after the restart
    a, b = live._adaptive[0], restored._adaptive[0]
    assert b.baseline.sigma(np.array([0]))[0] == pytest.approx(a.baseline.sigma(np.array([0]))[0])
    assert int(b.count[0]) == int(a.count[0]) > 20
    changed = MarketRuleSet([vol_rule(window_bars=2)], params.vol_windows_s)
    assert changed.restore_adaptive(snapshot) == []  # a changed rule learns afresh


def transfer_rules() -> list[RuleSpec]:
    return [RuleSpec(id="a.ffa", kind="fundflow_anomaly", metric="transfer", threshold=4.0,
                     params={"direction": "withdraw", "depth": 12, "min_history": 4,
                             "min_spread": 0.25})]  # fmt: skip


def test_fundflow_anomaly_judges_a_withdrawal_against_the_accounts_own_weekday():
    engine = RuleEngine(transfer_rules())
    ledgers: dict[int, FlowLedger] = {}
    rng = np.random.default_rng(2)
    fired = []
    day = 86400.0
    monday = 1_762_704_000.0 - 8 * 3600 + 10 * 3600  # 2025-11-10 10:00 Beijing, a Monday
    for week in range(8):
        for row, usual in ((0, 20_000.0), (1, 2_000_000.0)):
            amount = usual * float(np.exp(rng.normal(0, 0.2)))
            src = book_transfer(ledgers, row, monday + week * 7 * day + row, amount, False)
            fired += engine.evaluate(src, np.array([row]), monday + week * 7 * day + row)
    assert not fired  # ordinary Mondays for both accounts
    # 300k is nothing for the big account and a lot for the small one.
    t = monday + 8 * 7 * day
    for row in (0, 1):
        src = book_transfer(ledgers, row, t + row, 300_000.0, False)
        fired += engine.evaluate(src, np.array([row]), t + row)
    assert [int(f.rows[0]) for f in fired] == [0]
    ev = fired[0].evidence(0)
    assert ev["score"] > 4.0 and 15_000 < ev["baseline"] < 27_000 and ev["history"] == 8
    assert ev["text"].startswith(f"{ev['score']:.1f}z against its own Monday withdrawals")
    snapshot = json.loads(json.dumps(engine.adaptive_state(["SMALL", "BIG"])))
    again = RuleEngine(transfer_rules())  # a restarted shard: accounts come back later,
    assert again.restore_adaptive(snapshot, {}) == ["a.ffa"]
    again.adopt({"BIG": 0, "SMALL": 1})  # ... on other rows: the baseline follows the id
    src = book_transfer(ledgers, 1, t + 7 * day, 300_000.0, False)
    assert again.evaluate(src, np.array([1]), t + 7 * day)  # the small account's baseline
    src = book_transfer(ledgers, 0, t + 7 * day, 300_000.0, False)
    assert not again.evaluate(src, np.array([0]), t + 7 * day)  # and the big one's
    replayed = book_transfer(ledgers, 1, t, 300_000.0, False)
    assert not again.evaluate(replayed, np.array([1]), t)  # not folded (or fired) twice


def order_rule() -> RuleSpec:
    return RuleSpec(id="a.oba", kind="order_behaviour_anomaly", metric="cancels",
                    threshold=6.0, params={"window_s": 60.0, "halflife_windows": 30.0,
                                           "min_windows": 10})  # fmt: skip


def test_order_behaviour_anomaly_fires_on_a_burst_against_own_rate_only():
    engine = RuleEngine([order_rule()])
    engine.resize(2)
    rng = np.random.default_rng(4)
    fired = []
    for minute in range(40):
        base = T0 + minute * 60
        for row, rate in ((0, 3), (1, 40)):  # a quiet account and a busy market maker
            for k in range(int(rng.poisson(rate))):
                engine.on_activity("cancel", np.array([row]), base + 1 + k * 0.01)
        fired += engine.evaluate(lambda m, r: r, np.array([0, 1]), base + 59)
    assert not fired
    burst = T0 + 40 * 60
    for k in range(40):  # the busy account's ordinary minute, the quiet one's burst
        engine.on_activity("cancel", np.array([0, 1]), burst + 1 + k * 0.01)
    fired = engine.evaluate(lambda m, r: r, np.array([0, 1]), burst + 30)
    assert [int(r) for f in fired for r in f.rows] == [0]
    ev = fired[0].evidence(0)
    assert ev["move"] == 40 and 1.5 < ev["baseline"] < 5 and ev["score"] > 6
    snapshot = json.loads(json.dumps(engine.adaptive_state(["QUIET", "BUSY"])))
    again = RuleEngine([order_rule()])
    assert again.restore_adaptive(snapshot, {"QUIET": 0, "BUSY": 1}) == ["a.oba"]
    g0, g1 = engine.groups[0], again.groups[0]
    assert g1.rates.mean[:2] == pytest.approx(g0.rates.mean[:2])
    assert g1.counts[0] == 0  # the open window is counted again from the bus's replay:
    for k in range(40):
        again.on_activity("cancel", np.array([0]), burst + 1 + k * 0.01)
    again.on_activity("cancel", np.array([0]), burst - 120)  # older: in the baseline already
    assert g1.counts[0] == g0.counts[0] == 40
    assert [int(r) for f in again.evaluate(lambda m, r: r, np.array([0]), burst + 30)
            for r in f.rows] == [0]  # fmt: skip


def test_evidence_reaches_alert_title_page_journal_record_and_old_records_still_read():
    ts, last = walk(180, jump_at=120)
    table = load_contract_table()
    replay = MarketReplay([vol_rule()], table, SessionCalendar.from_table(table), StatsParams())
    ev = next(e for e in replay.run(generated_ticks(ts, last)) if e.rule_id == "m.vsm")
    alert = make_alert(ev, ev.ts)
    assert "σ against its own 1-min volatility" in alert_title(ev) == alert.title
    rec = {**alert_journal_record(alert), "kind": "alert", "actor": "Correlator"}
    typed = parse(rec)
    assert isinstance(typed, AlertRecord) and rec["v"] == 2
    assert typed.evidence["score"] == ev.attributes["evidence"]["score"]
    title, text, md, figures = render([alert])
    assert ev.attributes["evidence"]["text"] in text and "σ against its own" in md  # the page
    old = {"kind": "alert", "alert_id": "x", "attributes": {"kind": "market.jump"}, "v": 1}
    assert AlertRecord.from_record(old).evidence is None  # v1 without evidence reads


def test_rule_files_load_and_validate_the_adaptive_kinds(tmp_path):
    good = tmp_path / "adaptive.toml"
    good.write_text(
        '[[rules]]\nid = "m.v"\nkind = "vol_scaled_move"\nthreshold = 5.0\nwindow_bars = 3\n'
        '[[rules]]\nid = "a.f"\nkind = "fundflow_anomaly"\nthreshold = 4.0\n'
        '[[rules]]\nid = "a.o"\nkind = "order_behaviour_anomaly"\nmetric = "cancels"\n'
        "threshold = 6.0\nwindow_s = 30\n"
    )
    rs = rulesets.load([good])
    kinds = {r.id: (r.kind, r.metric, r.scope) for r in rs.rules}
    assert kinds == {"m.v": ("vol_scaled_move", "vol_scaled_move", "contract"),
                     "a.f": ("fundflow_anomaly", "transfer", "account"),
                     "a.o": ("order_behaviour_anomaly", "cancels", "account")}  # fmt: skip
    bad = tmp_path / "bad.toml"
    bad.write_text('[[rules]]\nid = "a.o"\nkind = "order_behaviour_anomaly"\n'
                   'metric = "equity"\nthreshold = 6.0\n')  # fmt: skip
    with pytest.raises(rulesets.RulesetError, match=r"rules\[0\] \(a.o\).metric"):
        rulesets.load([bad])
    typo = tmp_path / "typo.toml"
    typo.write_text('[[rules]]\nid = "m.v"\nkind = "vol_scaled_move"\nthreshold = 5\n'
                    "window_bar = 3\n")  # fmt: skip
    with pytest.raises(rulesets.RulesetError, match="did you mean 'window_bars'"):
        rulesets.load([typo])
