"""A backtest whose positions are in contracts its tick files do not have is refused in one line
naming the contracts (issue 19; was `zip() argument 2 is longer than argument 1`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app import backtest
from app.cli import main

ROOT = Path(__file__).resolve().parents[2]
TICKS = ROOT.parent / "shared" / "data" / "ticks" / "cn_20171113_selected" / "i1801_20171113.csv"


@pytest.mark.skipif(not TICKS.exists(), reason=f"real tick data not found at {TICKS}")
def test_positions_without_ticks_are_one_line(tmp_path, capsys):
    accounts = tmp_path / "accounts.csv"
    accounts.write_text("account_id,group_path,pre_balance\nA1,g/s/u,1000000\n")
    positions = tmp_path / "positions.csv"
    positions.write_text("account_id,contract,direction,volume,cost_price\nA1,rb1801,long,3,3900\n")
    with pytest.raises(backtest.BacktestInputError, match=r"no tick in the tick files: rb1801"):
        backtest.run([TICKS], accounts, positions, [ROOT / "examples" / "rules.toml"], tmp_path)
    argv = ["backtest", "--ticks", str(TICKS), "--accounts", str(accounts), "--positions",
            str(positions), "--rules", str(ROOT / "examples" / "rules.toml"), "--out",
            str(tmp_path / "out")]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "rb1801" in err and "Traceback" not in err
