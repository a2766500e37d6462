"""Issue 6's backtest scenario: the whole market of 2017-11-13 (CTP snapshots, 429 contracts)
through a 10,000-account book and the default rule set, on the real data of ../shared/data.

Reports, per data set (the whole market, and the five-contract extract):
- account_rules.replay_ticks_per_s: the default set's account rules over the 10,000-account book,
  parsed ticks in, alerts out (target >= 1,000,000/s on 2 cores);
- default_rules_replay_ticks_per_s: the whole default set, market statistics included (they
  run in a second process; per data second they cost what rules.market_stats costs);
- end_to_end_ticks_per_s_first / _cached: `fengkong backtest` from the CSV files, parsing them
  or reading the parse cache.
Skips with the reason when the data is absent.
"""

from __future__ import annotations

import csv
import shutil
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from app import backtest
from infra import rulesets
from infra.specs import load_contract_table
from rules.engine.backtest import Backtest
from rules.engine.backtest_market import MarketReplay
from rules.engine.kinds import kind_of
from rules.engine.spec import RuleSet
from rules.market_stats import StatsParams
from rules.sessions import SessionCalendar

NAME = "backtest"
TARGETS = {
    "end_to_end_ticks_per_s_cached": (">", 1_000_000),
    "end_to_end_ticks_per_s_first": (">", 300_000),
}  # issue 17
DESCRIPTION = (
    "10,000 accounts x 3 positions through a day of the whole market (2.5M ticks), default rules"
)
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ticks"
FULL = DATA / "cn_allcontracts_tick_20171113_MagicEthan_raw.tar.xz"
SELECTED = DATA / "cn_20171113_selected"
RULES = Path(__file__).resolve().parents[1] / "examples" / "rules.toml"


def write_book(out: Path, n_accounts: int, prices: dict[str, float], seed: int = 6,
               max_positions: int = 3) -> tuple[Path, Path]:  # fmt: skip
    """accounts.csv and positions.csv: accounts holding 1..max_positions of `prices`' contracts
    at those prices, with risk degrees like a broker's book: most between 20% and 60%, a few
    percent past 80% (some cross lines as prices move)."""
    rng = np.random.default_rng(seed)
    table = load_contract_table()
    names = sorted(prices)
    out.mkdir(parents=True, exist_ok=True)
    accounts, positions = out / "accounts.csv", out / "positions.csv"
    with open(accounts, "w", newline="") as fa, open(positions, "w", newline="") as fp:
        wa, wp = csv.writer(fa), csv.writer(fp)
        wa.writerow(["account_id", "group_path", "pre_balance"])
        wp.writerow(["account_id", "contract", "direction", "volume", "cost_price"])
        for i in range(n_accounts):
            account = f"ACC{i:06d}"
            k = int(rng.integers(1, max_positions + 1))
            margin = 0.0
            for c in rng.choice(names, size=min(k, len(names)), replace=False):
                spec = table.spec(str(c))
                lots = int(rng.integers(1, 30))
                direction = "long" if rng.random() < 0.6 else "short"
                price = prices[str(c)]
                margin += price * lots * spec.multiplier * spec.margin_rate
                wp.writerow([account, c, direction, lots, f"{price:g}"])
            risk = 0.05 + 0.95 * float(rng.beta(2.2, 3.5))  # most 20-60%, a few past 80%
            unit = f"grp{i % 3}/sub{i % 5}/unit{i % 20:02d}"
            wa.writerow([account, unit, f"{margin / risk:.2f}"])
    return accounts, positions


def first_prices(ticks: backtest.Ticks, wanted: list[str]) -> dict[str, float]:
    out = {}
    for name in wanted:
        if name in ticks.instruments:
            i = ticks.instruments.index(name)
            out[name] = float(ticks.last[np.flatnonzero(ticks.idx == i)[0]])
    return out


def _case(
    tick_paths: list[Path], tmp: Path, n_accounts: int, contracts: list[str], label: str
) -> dict[str, Any]:
    parsed, _ = backtest.load_ticks(tick_paths)
    accounts, positions = write_book(
        tmp / f"book-{label}", n_accounts, first_prices(parsed, contracts)
    )
    cache = tmp / f"cache-{label}"
    runs = {}
    for name, use_cache in (("first", True), ("cached", True)):
        t = time.perf_counter()
        summary = backtest.run(tick_paths, accounts, positions, [RULES], tmp / f"out-{label}-{name}",
                               cache=str(cache) if use_cache else None)  # fmt: skip
        runs[name] = (time.perf_counter() - t, summary)
    summary = runs["cached"][1]
    ticks = summary["inputs"]["ticks"]
    account_rules = _account_rules_only(parsed, accounts, positions)
    return {
        "market_rules": _market_only(parsed, stepwise=label == "five"),
        "account_rules": account_rules,
        "ticks": ticks,
        "accounts": summary["inputs"]["accounts"],
        "positions": summary["inputs"]["positions"],
        "steps": summary["inputs"]["steps"],
        "alerts": summary["alerts"],
        "default_rules_replay_ticks_per_s": summary["perf"]["replay_ticks_per_s"],
        "end_to_end_ticks_per_s_first": round(ticks / runs["first"][0]),
        "end_to_end_ticks_per_s_cached": round(ticks / runs["cached"][0]),
        "stages_s": summary["perf"]["stages_s"],
        "exact_blocks": f"{summary['inputs']['blocks_exact']}/{summary['inputs']['blocks']}",
    }


def _market_only(ticks: backtest.Ticks, stepwise: bool) -> dict[str, Any]:
    """The default set's market rules alone: whole-array statistics (rules.market_series)
    and, when `stepwise`, the second-by-second fold they replace, in the same run."""
    full = rulesets.load([RULES])
    specs = [r for r in full.rules if kind_of(r.kind).place(r) == "market"]
    table = load_contract_table()
    calendar = SessionCalendar.from_table(table)
    out: dict[str, Any] = {"rules": len(specs)}
    events = {}
    for name, step in (("vectorized", False), ("stepwise", True))[: 2 if stepwise else 1]:
        t = time.perf_counter()
        events[name] = MarketReplay(specs, table, calendar, StatsParams(), step).run(ticks)
        elapsed = time.perf_counter() - t
        out[f"{name}_s"] = round(elapsed, 2)
        out[f"{name}_ticks_per_s"] = round(len(ticks) / elapsed)
    out["events"] = len(events["vectorized"])
    if stepwise:
        key = lambda e: (e.ts, e.dimension, e.rule_id, e.key)  # noqa: E731
        out["identical"] = sorted(events["vectorized"], key=key) == sorted(
            events["stepwise"], key=key
        )
        out["speedup"] = round(out["stepwise_s"] / out["vectorized_s"], 1)
    return out


def _account_rules_only(ticks: backtest.Ticks, accounts: Path, positions: Path) -> dict[str, Any]:
    """The default set's account rules alone (no market statistics): the 10,000-account
    book's replay through the rule engine, parsed ticks in, alerts out."""
    full = rulesets.load([RULES])
    keep = tuple(r for r in full.rules if kind_of(r.kind).place(r) in ("account", "correlator")
                 and r.kind != "composite")  # fmt: skip
    table = load_contract_table()
    book = backtest.build_book(accounts, positions, table)
    engine = Backtest(book, RuleSet(keep, full.inhibit, full.hygiene), table)
    t = time.perf_counter()
    result = engine.run(ticks)
    elapsed = time.perf_counter() - t
    return {
        "rules": len(keep),
        "alerts": len(result.alerts),
        "replay_s": round(elapsed, 2),
        "replay_ticks_per_s": round(len(ticks) / elapsed),
        "account_steps_exact": result.stats["account_steps_exact"],
        "account_steps_total": result.stats["steps"] * result.stats["accounts"],
    }


MAIN = ["rb1801", "hc1801", "i1801", "j1801", "jm1801", "cu1801", "al1801", "zn1801", "ni1801",
        "au1712", "ag1712", "ru1801", "m1801", "y1801", "p1801", "c1801", "SR801", "CF801",
        "TA801", "MA801", "IF1711", "IC1711", "IH1711", "T1712"]  # fmt: skip


def run(quick: bool = False) -> dict[str, Any]:
    if not FULL.exists() or not SELECTED.exists():
        return {"skipped": f"real tick data not found under {DATA}"}
    tmp = Path(tempfile.mkdtemp(prefix="fengkong-backtest-"))
    try:
        with tarfile.open(FULL) as tar:
            tar.extractall(tmp / "full", filter="data")
        full = next(
            p for p in (tmp / "full").rglob("*") if p.is_dir() and any(p.glob("rb1801_*.csv"))
        )
        n = 2_000 if quick else 10_000
        whole = _case([full], tmp, n, MAIN, "full")
        return {
            "accounts": n,
            **{k: whole[k] for k in TARGETS},  # the targets are the whole market's figures
            "full_market": whole,
            "five_contracts": _case(
                [SELECTED], tmp, n, ["rb1801", "cu1801", "au1712", "i1801", "IF1711"], "five"
            ),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
