"""The adaptive kinds fire on the shared real data (issue 18: "the adaptive kinds fire on the
shared data with their baselines in the alert"): `fengkong backtest` over the 2017-11-13 ticks
of rb1801 and i1801 (night and day) with a rule file of vol_scaled_move rules. Skips, saying why, when
../shared/data is absent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app import backtest

ROOT = Path(__file__).resolve().parents[2]
SELECTED = ROOT.parent / "shared" / "data" / "ticks" / "cn_20171113_selected"
pytestmark = pytest.mark.skipif(
    not SELECTED.is_dir(), reason=f"real tick data not found at {SELECTED} (shared data README)"
)


def test_backtest_on_shared_ticks_raises_vol_scaled_alerts_with_their_baselines(tmp_path):
    rules = tmp_path / "adaptive.toml"
    rules.write_text(
        '[[rules]]\nid = "market.vol_move_1m"\nkind = "vol_scaled_move"\nthreshold = 5.0\n'
        "rearm = 2.0\nbar_s = 60\nwindow_bars = 1\nhalflife_bars = 120\nmin_bars = 30\n"
        '[[rules]]\nid = "market.vol_move_5m"\nkind = "vol_scaled_move"\nthreshold = 4.0\n'
        "rearm = 2.0\nwindow_bars = 5\n"
    )
    accounts, positions = tmp_path / "accounts.csv", tmp_path / "positions.csv"
    accounts.write_text("account_id,group_path,pre_balance\nA1,g/s/u,500000\n")
    positions.write_text("account_id,contract,direction,volume,cost_price\n"
                         "A1,rb1801,long,2,3900\nA1,i1801,short,5,480\n")  # fmt: skip
    ticks = [SELECTED / "rb1801_20171113.csv", SELECTED / "i1801_20171113.csv"]
    backtest.run(ticks, accounts, positions, [rules], tmp_path / "out", parallel=False)
    lines = [json.loads(x) for x in (tmp_path / "out" / "alerts.jsonl").read_text().splitlines()]
    adaptive = [x for x in lines if x["rule"].startswith("market.vol_move")]
    assert adaptive, "no vol_scaled_move alert on a full day of five contracts"
    for x in adaptive:
        ev = x["evidence"]
        assert ev["score"] > ev["threshold"] and x["value"] == pytest.approx(ev["score"])
        assert ev["baseline"] > 0 and abs(ev["move"]) > 0  # σ of the move, learned per contract
        assert "against its own" in ev["text"]
    # Each contract is judged against its own volatility: the baselines differ by contract.
    by_key = {x["key"]: x["evidence"]["baseline"] for x in adaptive if x["rule"].endswith("1m")}
    assert len(set(by_key.values())) == len(by_key)
