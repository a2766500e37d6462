"""`fengkong backtest --evaluate --compare`: two rule sets judged on one generated history.

rb2601 sits at 3,000 for ten minutes, then slides 6% over five minutes. Long accounts of 10 lots
start at risk degrees 0.3 … 0.85: the slide takes the ones that start at 0.7 and above past
100% (the loss, 0.06 × 300,000 = 18,000, is most of their equity), the ones at 0.3 and 0.5
stay inside. Rule set A warns at 80%, B only at 99%: both catch every crossing, A earlier but
with one warning on an account that never crosses.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from app.cli import main
from infra.specs import load_contract_table

RISK = {"Q30": 0.3, "Q50": 0.5, "C70": 0.7, "C75": 0.75, "C85": 0.85}
RULES_A = '[[rules]]\nid = "warn.80"\nthreshold = 0.8\nrearm = 0.75\n'
RULES_B = '[[rules]]\nid = "warn.99"\nthreshold = 0.99\nrearm = 0.95\n'


def _inputs(tmp: Path) -> list[str]:
    table = load_contract_table()
    spec = table.spec("rb2601")
    t = np.arange(0, 1200, 0.5)
    price = np.where(t < 600, 3000.0, 3000.0 * (1 - 0.06 * np.minimum((t - 600) / 300, 1.0)))
    price = np.round(price / spec.tick_size) * spec.tick_size
    lines = ["UpdateTime,BidPrice1,BidVolume1,AskPrice1,AskVolume1,LastPrice,Volume,OpenInterest"]
    for i, (sec, p) in enumerate(zip(9 * 3600 + t, price, strict=True)):
        hh, mm, ss = int(sec // 3600), int(sec % 3600 // 60), sec % 60
        lines.append(f"{hh:02d}:{mm:02d}:{ss:06.3f},{p},1,{p},1,{p},{i},1000")
    (tmp / "rb2601_20260105.csv").write_text("\n".join(lines) + "\n")
    margin = 3000.0 * 10 * spec.multiplier * spec.margin_rate
    acc = ["account_id,group_path,pre_balance"] + [
        f"{a},g/s/u,{margin / r:.2f}" for a, r in RISK.items()
    ]
    pos = ["account_id,contract,direction,volume,cost_price"] + [
        f"{a},rb2601,long,10,3000" for a in RISK
    ]
    (tmp / "accounts.csv").write_text("\n".join(acc) + "\n")
    (tmp / "positions.csv").write_text("\n".join(pos) + "\n")
    (tmp / "a.toml").write_text(RULES_A)
    (tmp / "b.toml").write_text(RULES_B)
    return ["backtest", "--ticks", str(tmp / "rb2601_20260105.csv"), "--accounts",
            str(tmp / "accounts.csv"), "--positions", str(tmp / "positions.csv"),
            "--rules", str(tmp / "a.toml"), "--out", str(tmp / "out")]  # fmt: skip


def test_evaluate_and_compare_two_rule_sets(tmp_path, capsys) -> None:
    argv = _inputs(tmp_path)
    assert main([*argv, "--evaluate", "--compare", str(tmp_path / "b.toml")]) == 0
    text = capsys.readouterr().out
    assert "evaluation against crossings of 100%" in text
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    a, b = summary["evaluation"]["rule_sets"]
    assert (a["rule_set"], b["rule_set"]) == ("a.toml", "b.toml")
    assert a["crossings"] == b["crossings"] == 3  # C70, C75, C85; Q30 and Q50 stay inside
    assert a["caught"] == 3 and a["missed"] == 0 and a["missed_crossings"] == []
    assert b["caught"] == 3 and b["lead_s_median"] < a["lead_s_median"]
    # Q50 ends at 24,000 equity against 19,740 margin (82%): A warns it, it never crosses, so
    # A's precision is 3 of 4 alerted accounts; B warns only the three that cross.
    assert a["lead_s_median"] > 0 and a["precision"] == 0.75 and b["precision"] == 1.0
    assert a["alerts"] == 4 and a["alerts_per_account_day"] == 4 / 5


def test_evaluate_counts_a_missed_crossing(tmp_path, capsys) -> None:
    argv = _inputs(tmp_path)
    (tmp_path / "a.toml").write_text('[[rules]]\nid = "never"\nthreshold = 5.0\nrearm = 4.0\n')
    assert main([*argv, "--evaluate"]) == 0
    capsys.readouterr()
    (row,) = json.loads((tmp_path / "out" / "summary.json").read_text())["evaluation"]["rule_sets"]
    assert row["crossings"] == 3 and row["caught"] == 0 and row["missed"] == 3
    assert sorted(c["key"] for c in row["missed_crossings"]) == ["C70", "C75", "C85"]
