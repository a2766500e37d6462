"""The backtest replays history through the live code: its figures are the book's marking,
its screen never changes an outcome (screened == every step, on synthetic and on real ticks),
its output is deterministic, and its inputs fail with the file and line."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from app import backtest, cli
from gateways.market.replay import CsvReplayPublisher
from infra.specs import load_contract_table
from rules.book import AccountBook
from rules.engine.backtest import Backtest, Ticks
from rules.engine.bounds import figure_bounds, figure_path
from rules.engine.spec import RuleSet, RuleSpec
from rules.sessions import SessionCalendar

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "ticks"
SELECTED = DATA / "cn_20171113_selected"
needs_data = pytest.mark.skipif(
    not SELECTED.exists(), reason=f"real tick data not found at {SELECTED}"
)
CONTRACTS = ["rb2601", "cu2601", "i2601", "au2602"]
TABLE = load_contract_table()


def random_book(n: int, seed: int = 5) -> tuple[AccountBook, dict[str, float]]:
    rng = np.random.default_rng(seed)
    prices = {"rb2601": 3000.0, "cu2601": 80000.0, "i2601": 800.0, "au2602": 600.0}
    book = AccountBook(TABLE)
    for i in range(n):
        held = rng.choice(CONTRACTS, int(rng.integers(1, 4)), replace=False)
        positions, margin = [], 0.0
        for c in held:
            spec = TABLE.spec(str(c))
            lots = float(rng.integers(1, 20))
            positions.append({"instrument": str(c), "direction": "long" if rng.random() < 0.6 else "short",
                              "volume": lots, "cost_price": prices[str(c)] * (1 + rng.normal(0, 0.01))})  # fmt: skip
            margin += prices[str(c)] * lots * spec.multiplier * spec.margin_rate
        book.apply_snapshot({"account_id": f"A{i:04d}", "group_path": "g/s/u", "positions": positions,
                             "pre_balance": margin / rng.uniform(0.4, 0.95)})  # fmt: skip
    return book, prices


def test_figure_path_is_the_books_own_marking_bit_for_bit():
    book, prices = random_book(60)
    rng = np.random.default_rng(1)
    rows = np.arange(0, 60, 3)
    path = np.array([[prices.get(n, np.nan) * (1 + rng.normal(0, 0.02)) for n in book.contracts.names]
                     for _ in range(8)])  # fmt: skip
    path[0, 1] = np.nan  # a contract not priced yet: its positions' cost stands in
    got = figure_path(
        book, rows, path, {"risk_degree", "equity", "available", "liquidation_distance"}
    )
    for k in range(8):
        names = book.contracts.names
        book.contracts.last[: len(names)] = path[k]
        figures = book.mark()
        for metric, values in got.items():
            assert np.array_equal(values[k], getattr(figures, metric)[rows]), (metric, k)


def test_bounds_contain_every_price_path_within_the_ranges():
    book, prices = random_book(80, seed=9)
    rng = np.random.default_rng(2)
    base = np.array([prices[n] for n in book.contracts.names])
    lo, hi = base * 0.97, base * 1.03
    rows = np.arange(80)
    bounds = figure_bounds(book, lo, hi, np.zeros(base.size, dtype=bool), rows)
    for _ in range(50):
        book.contracts.last[: base.size] = rng.uniform(lo, hi)
        figures = book.mark()
        for metric, (b_lo, b_hi) in bounds.items():
            v = getattr(figures, metric)
            assert np.all((v >= b_lo) & (v <= b_hi)), metric


def synthetic_ticks(start: float, seconds: int, seed: int = 3) -> Ticks:
    rng = np.random.default_rng(seed)
    names = ["rb2601", "cu2601", "i2601", "au2602"]
    base = np.array([3000.0, 80000.0, 800.0, 600.0])
    n = seconds * 2 * len(names)
    idx = np.tile(np.arange(len(names)), seconds * 2)
    ts = start + np.repeat(np.arange(seconds * 2) * 0.5, len(names)) + rng.uniform(0, 0.4, n)
    walk = np.cumsum(rng.normal(0, 0.0015, (seconds * 2, len(names))), axis=0).ravel()
    last = np.round(base[idx] * np.exp(walk), 1)
    nan = np.full(n, np.nan)
    order = np.argsort(ts, kind="stable")
    return Ticks(
        names, idx[order], ts[order], last[order], nan, nan, nan, nan, nan, nan, nan.copy()
    )


ACCOUNT_RULES = RuleSet((
    RuleSpec(id="warn", threshold=0.8, rearm=0.75),
    RuleSpec(id="liq", threshold=1.0, rearm=0.95, severity="critical"),
    RuleSpec(id="near", metric="liquidation_distance", op="<", threshold=0.03, rearm=0.04),
    RuleSpec(id="avail", metric="available", op="<", threshold=0.0, rearm=1000.0),
    RuleSpec(id="close", kind="session", sessions=("close",), threshold=0.7, rearm=0.65, severity="info"),
    RuleSpec(id="drop", kind="change", metric="equity", op="<", threshold=-0.05, rearm=-0.02,
             params={"window_s": 60.0, "compare": "previous", "mode": "pct", "n": 20}),
))  # fmt: skip


def head(ticks: Ticks, seconds: float) -> Ticks:
    cut = int(np.searchsorted(ticks.ts, ticks.ts[0] + seconds))
    return Ticks(
        ticks.instruments, ticks.idx[:cut], *(getattr(ticks, f)[:cut] for f in backtest.FIELDS)
    )


def replay(ticks: Ticks, ruleset: RuleSet, screen: bool, book: AccountBook) -> list[dict]:
    bt = Backtest(
        book, ruleset, TABLE, SessionCalendar.from_table(TABLE), screen=screen, block_steps=32
    )
    return bt.run(ticks).alerts


def test_screened_replay_equals_every_step_on_a_synthetic_day():
    start = 1767595500.0  # 2026-01-05 14:45 Beijing: the close session opens within the replay
    ticks = synthetic_ticks(start, 1200)
    screened = replay(ticks, ACCOUNT_RULES, True, random_book(300)[0])
    stepwise = replay(ticks, ACCOUNT_RULES, False, random_book(300)[0])
    assert screened == stepwise
    assert {a["rule"] for a in screened} >= {"warn", "close", "drop", "near"}


@needs_data
def test_screened_replay_equals_every_step_on_real_ticks():
    ticks, _ = backtest.load_ticks(
        [SELECTED / "rb1801_20171113.csv", SELECTED / "i1801_20171113.csv"]
    )
    part = head(ticks, 3600)  # the first hour of the night
    accounts, positions = ROOT / "examples" / "accounts.csv", ROOT / "examples" / "positions.csv"
    runs = [
        replay(part, ACCOUNT_RULES, screen, backtest.build_book(accounts, positions, TABLE))
        for screen in (True, False)
    ]
    assert runs[0] == runs[1] and runs[0]


@needs_data
def test_cli_backtest_on_real_data_is_deterministic(tmp_path, capsys):
    rules = tmp_path / "accounts.toml"
    rules.write_text(
        '[[rules]]\nid = "warn"\nthreshold = 0.8\nrearm = 0.75\n'
        '[[rules]]\nid = "liq"\nthreshold = 1.0\nrearm = 0.95\nseverity = "critical"\n'
        '[[inhibit]]\nid = "mute"\nsource = ["severity=critical"]\ntarget = ["severity=warning"]\n'
    )
    outs = []
    for run in ("one", "two"):
        argv = ["backtest", "--ticks", str(SELECTED), "--accounts", str(ROOT / "examples" / "accounts.csv"),
                "--positions", str(ROOT / "examples" / "positions.csv"), "--rules", str(rules),
                "--out", str(tmp_path / run)]  # fmt: skip
        assert cli.main(argv) == 0
        outs.append(
            {f: (tmp_path / run / f).read_bytes() for f in ("alerts.jsonl", "summary.json")}
        )
    assert outs[0] == outs[1]
    assert "ticks/s" in capsys.readouterr().out
    lines = [json.loads(x) for x in outs[0]["alerts.jsonl"].splitlines()]
    assert lines and {"time", "rule", "key", "severity", "value"} <= set(lines[0])
    summary = json.loads(outs[0]["summary.json"])
    assert summary["inputs"]["ticks"] == 158786 and summary["alerts"] == len(lines)
    assert sum(summary["by_severity"].values()) == len(lines) == sum(summary["by_hour"].values())
    assert sum(r["alerts"] for r in summary["by_rule"].values()) == len(lines)


@needs_data
def test_market_and_composite_rules_in_the_backtest():
    ticks, _ = backtest.load_ticks([SELECTED / "cu1801_20171113.csv"])
    part = head(ticks, 1800)
    book = AccountBook(TABLE)
    price = float(part.last[0])
    spec = TABLE.spec("cu1801")
    margin = price * 10 * spec.multiplier * spec.margin_rate
    book.apply_snapshot({"account_id": "C1", "pre_balance": margin / 0.9, "group_path": "g",
                         "positions": [{"instrument": "cu1801", "direction": "long", "volume": 10, "cost_price": price}]})  # fmt: skip
    ruleset = RuleSet((
        RuleSpec(id="warn", threshold=0.8, rearm=0.75),
        RuleSpec(id="vol", kind="volatility", metric="volatility", scope="contract", threshold=0.05, rearm=0.01,
                 params={"window_s": 60}),
        RuleSpec(id="combo", kind="composite", metric="composite", scope="any", severity="critical",
                 params={"join": "holds", "within_s": 3600.0, "when": [["rule=warn"], ["rule=vol"]]}),
    ))  # fmt: skip
    alerts = Backtest(book, ruleset, TABLE).run(part).alerts
    rules = [a["rule"] for a in alerts]
    assert "warn" in rules and "vol" in rules and "combo" in rules
    [combo] = [a for a in alerts if a["rule"] == "combo"]
    assert combo["key"] == "C1" and set(combo["components"]) == {("warn", "C1"), ("vol", "cu1801")}


@needs_data
def test_fast_tick_parsing_matches_the_replay_reader(tmp_path):
    source = SELECTED / "i1801_20171113.csv"  # has a header and out-of-order recorder times
    rows = list(CsvReplayPublisher("tcp://127.0.0.1:0", [source], speed=None).read_file(source))
    headless = tmp_path / "i1801_20171113.csv.gz"
    with gzip.open(headless, "wt") as fh:
        fh.write("".join(source.read_text().splitlines(keepends=True)[1:]))
    for path in (source, headless):
        ticks, info = backtest.load_ticks([path])
        assert info.get("rows_fast") == len(rows)
        order = np.argsort([r.ts for r in rows], kind="stable")
        for i, name in enumerate(("ts", "last", "volume", "open_interest", "bid", "ask")):
            want = np.array([rows[j][[0, 2, 3, 4, 5, 6][i]] for j in order])
            assert np.array_equal(getattr(ticks, name), want, equal_nan=True), (path, name)


def test_inputs_fail_with_file_and_line(tmp_path):
    accounts = tmp_path / "accounts.csv"
    accounts.write_text("account_id,group_path,pre_balance\nA1,g/s/u,100000\n")
    positions = tmp_path / "positions.csv"
    positions.write_text(
        "account_id,contract,direction,volume,cost_price\nA1,rb2601,sideways,1,3000\n"
    )
    with pytest.raises(
        backtest.BacktestInputError, match=rf"{positions}:2: direction must be long or short"
    ):
        backtest.build_book(accounts, positions, TABLE)
    positions.write_text("account_id,contract,direction,volume,cost_price\nA1,zz2601,long,1,3000\n")
    with pytest.raises(backtest.BacktestInputError, match=rf"{positions}:2: contract 'zz2601'"):
        backtest.build_book(accounts, positions, TABLE)
    positions.write_text("account_id,contract,direction,volume,cost_price\nA1,rb2601,long,1,3000\n")
    accounts.write_text("account_id,pre_balance\nA1,1\n")
    with pytest.raises(
        backtest.BacktestInputError, match="header needs account_id, group_path, pre_balance"
    ):
        backtest.build_book(accounts, positions, TABLE)
    accounts.write_text("account_id,group_path,pre_balance\nA1,g,lots\n")
    with pytest.raises(
        backtest.BacktestInputError, match=rf"{accounts}:2: pre_balance 'lots' is not a number"
    ):
        backtest.build_book(accounts, positions, TABLE)
