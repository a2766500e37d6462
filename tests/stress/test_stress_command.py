"""`fengkong stress` offline: files in, a table, JSON and an HTML report with charts out."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

import pytest

from app.stress_command import add_parser
from infra.stress_io import historical_scenario, load_scenarios, return_covariance
from rules.stress.correlated import conditional_moves, correlated

BARS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "bars" / "wtpy_demo"


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture()
def book_files(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "accounts.csv").write_text(
        "account_id,group_path,pre_balance\nA,grp/s1/u1,100000\nB,grp/s1/u2,120000\n"
    )
    (tmp_path / "positions.csv").write_text(
        "account_id,contract,direction,volume,cost_price\nA,rb2601,long,10,3500\n"
        "B,rb2601,long,40,3500\n"
    )
    (tmp_path / "prices.csv").write_text("instrument,last,pre_settlement\nrb2601,3500,3500\n")
    return {k: str(tmp_path / f"{k}.csv") for k in ("accounts", "positions", "prices")}


def test_offline_stress_writes_table_json_and_html(book_files, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    rc = _run(["stress", "--scenario", "black-open-7", "--accounts", book_files["accounts"],
               "--positions", book_files["positions"], "--prices", book_files["prices"],
               "--out", str(out), "--reverse"])  # fmt: skip
    text = capsys.readouterr().out
    assert rc == 0
    # rb's multiplier and margin come from the shipped table; B is the one past the line.
    assert "past the line 1" in text and text.index("B ") < text.index("A ")
    report = json.loads((out / "stress-black-open-7.json").read_text())
    b = next(r for r in report["accounts"] if r["account_id"] == "B")
    assert b["past_line"] and b["equity_after"] == pytest.approx(120_000 - 245 * 400)
    html = (out / "stress-black-open-7.html").read_text()
    assert "echarts.init" in html and (out / "echarts.min.js").stat().st_size > 500_000
    assert "smallest crossing move" in text


def test_offline_stress_json_only(book_files, capsys) -> None:
    rc = _run(["stress", "--scenario", "all-limit-down", "--accounts", book_files["accounts"],
               "--positions", book_files["positions"], "--prices", book_files["prices"], "--json"])  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert rc == 0 and report["summary"]["scenario"] == "all-limit-down"


@pytest.mark.parametrize(
    "argv, words",
    [
        (["stress", "--scenario", "nope"], "unknown scenario 'nope'"),
        (["stress"], "--scenario NAME is required"),
        (["stress", "--scenario", "black-open-7"], "give --accounts and --positions"),
        (["stress", "history", "--day", "yesterday", "--bars", "x"], "is not a date"),
    ],
)
def test_bad_input_is_one_line(argv: list[str], words: str, capsys) -> None:
    assert _run(argv) == 2
    out = capsys.readouterr().out.strip()
    assert words in out and "\n" not in out and "Traceback" not in out


def test_bad_prices_file_names_the_line(book_files, tmp_path, capsys) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("instrument,last\nrb2601,abc\n")
    rc = _run(["stress", "--scenario", "black-open-7", "--accounts", book_files["accounts"],
               "--positions", book_files["positions"], "--prices", str(bad)])  # fmt: skip
    assert rc == 2 and f"{bad}:2: last 'abc' is not a number" in capsys.readouterr().out


def test_library_loads_and_every_scenario_is_named() -> None:
    library = load_scenarios()
    assert {"black-open-7", "all-limit-down", "hist-2020-02-03", "hist-2016-01-04"} <= set(library)
    assert all(s.description for s in library.values())


def test_conditional_moves_follow_the_covariance() -> None:
    import numpy as np

    cov = np.array([[4.0, 2.0, 0.0], [2.0, 4.0, 0.0], [0.0, 0.0, 1.0]]) * 1e-4
    moves = conditional_moves(["rb", "hc", "cu"], cov, {"rb": -7.0})
    # beta of hc on rb is 0.5: log move −0.0725 × 0.5; cu is uncorrelated and stays.
    assert moves["hc"] == pytest.approx((np.exp(0.5 * np.log(0.93)) - 1) * 100)
    assert moves["cu"] == pytest.approx(0.0) and moves["rb"] == -7.0


@pytest.mark.skipif(
    not BARS.exists(), reason="needs ../shared/data/bars/wtpy_demo (not in the repo)"
)
def test_history_scenarios_match_the_shared_bars() -> None:
    library = load_scenarios()
    for name in ("hist-2020-02-03", "hist-2016-01-04", "hist-2015-07-08"):
        day = dt.date.fromisoformat(name.removeprefix("hist-"))
        fresh = {m.names[0]: m.pct for m in historical_scenario(BARS, day).moves}
        shipped = {m.names[0]: m.pct for m in library[name].moves}
        assert fresh.keys() == shipped.keys()
        assert all(fresh[k] == pytest.approx(shipped[k], abs=1e-4) for k in shipped)
    products, cov = return_covariance(BARS, dt.date(2019, 8, 1), dt.date(2020, 12, 31))
    black = correlated(library["black-open-7"], products, cov)
    moves = {m.names[0]: m.pct for m in black.moves}
    assert moves["rb"] == -7 and moves["i"] == -7
    assert -7 < moves["bu"] < 0  # a related market falls with them, less
