"""Limit-locked holdings as rule metrics: accepted in rule files, the derived
`locked_risk_degree`, the default rules for equity ≤ 0 and locked accounts above 90%, the
drill-down notes, and the backtest's candidates for locked groups."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from infra import rulesets
from infra.account_notes import account_notes, risk_text
from rules.engine.metrics import ACCOUNT_METRICS, derived_metric

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "rules.toml"


def test_default_rules_raise_an_emergency_at_zero_equity_and_alert_locked_high_risk():
    rs = rulesets.load([EXAMPLE]).by_id()
    zero = rs["account.equity.nonpositive"]
    assert (zero.metric, zero.op, zero.threshold, zero.severity) == (
        "equity",
        "<=",
        0.0,
        "emergency",
    )
    locked = rs["account.locked_at_high_risk"]
    assert (locked.metric, locked.op, locked.threshold) == ("locked_risk_degree", ">", 0.9)


@pytest.mark.parametrize("metric", ["locked_contracts", "locked_margin", "locked_risk_degree"])
def test_locked_metrics_are_accepted_in_rule_files(tmp_path, metric):
    path = tmp_path / "r.toml"
    path.write_text(f'[[rules]]\nid = "x"\nmetric = "{metric}"\nthreshold = 0.5\n')
    assert rulesets.load([path]).by_id()["x"].metric == metric
    assert metric in ACCOUNT_METRICS


def test_a_misspelt_locked_metric_is_named(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text('[[rules]]\nid = "x"\nmetric = "locked_risk_degre"\nthreshold = 0.5\n')
    with pytest.raises(rulesets.RulesetError, match="did you mean 'locked_risk_degree'"):
        rulesets.load([path])


class _Figures:
    def __init__(self, risk: list[float], locked: list[float]) -> None:
        self.risk_degree = np.array(risk)
        self.locked_contracts = np.array(locked)


def test_locked_risk_degree_is_the_risk_degree_of_locked_accounts_only():
    figures = _Figures([0.95, 0.95, math.inf, 0.5], [1, 0, 2, 3])
    got = derived_metric("locked_risk_degree", figures, np.arange(4))
    assert got.tolist() == [0.95, 0.0, math.inf, 0.5]
    assert derived_metric("locked_risk_degree", figures, np.array([1, 2])).tolist() == [
        0.0,
        math.inf,
    ]


def test_drill_down_says_past_the_line_and_names_locked_contracts():
    view = {"equity": -121320.0, "risk_degree": math.inf, "locked_contracts": 1.0,
            "locked_margin": 52000.0, "contract_distances": [
                {"instrument": "p2005", "distance": 0.0, "limit_locked": True},
                {"instrument": "rb2005", "distance": 0.0, "limit_locked": False}]}  # fmt: skip
    notes = account_notes(view)
    assert notes[0] == "past the liquidation line: equity -121,320.00 ≤ 0"
    assert notes[1] == "locked at limit against the account: p2005, margin stuck 52,000.00"
    assert risk_text(math.inf) == "PAST LINE" and risk_text(0.8123) == "81.2%"
    assert account_notes({"equity": 10.0, "risk_degree": 0.5, "contract_distances": []}) == []
