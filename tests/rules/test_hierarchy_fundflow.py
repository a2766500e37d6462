from __future__ import annotations

import numpy as np
import pytest

from infra.config import FundFlowConfig
from infra.config.legacy import fund_flow_specs
from rules.engine.evaluator import RuleEngine
from rules.engine.spec import RuleSpec
from rules.fundflow import FlowLedger, TransferSource
from rules.hierarchy import NodeIndex, exposure_rollup, merge, node_paths, rollup


def test_node_paths_and_rollup_merge_across_shards():
    assert node_paths("grpA/sub1/unit03", "arb") == [
        "grpA",
        "grpA/sub1",
        "grpA/sub1/unit03",
        "strategy:arb",
    ]
    shard1 = NodeIndex([node_paths("g/s1/u1"), node_paths("g/s1/u2")])
    shard2 = NodeIndex([node_paths("g/s2/u3")])
    f1 = {
        "equity": np.array([100.0, 300.0]),
        "margin": np.array([50.0, 60.0]),
        "exchange_margin": np.array([40.0, 50.0]),
        "available": np.array([50.0, 240.0]),
    }
    f2 = {
        "equity": np.array([200.0]),
        "margin": np.array([190.0]),
        "exchange_margin": np.array([150.0]),
        "available": np.array([10.0]),
    }
    merged = merge(
        [rollup(shard1, np.array([True, True]), f1), rollup(shard2, np.array([True]), f2)]
    )
    assert merged["g"]["equity"] == 600 and merged["g"]["accounts"] == 3
    assert merged["g"]["risk_degree"] == pytest.approx(300 / 600)
    assert merged["g/s1"]["margin"] == 110 and merged["g/s2/u3"]["risk_degree"] == pytest.approx(
        0.95
    )
    assert merged["g/s1/u1"]["level"] == "unit"
    # an inactive (removed) account drops out of every level
    assert rollup(shard1, np.array([True, False]), f1)["g/s1"]["equity"] == 100


def test_exposure_rollup_counts_each_position_in_every_node():
    index = NodeIndex([node_paths("g/s1/u1"), node_paths("g/s2/u2", "arb")])
    pos_account = np.array([0, 0, 1])
    commodity = np.array([0, 1, 0])
    units = np.array([100.0, -5.0, -30.0])
    out = exposure_rollup(index, pos_account, commodity, units, ["rb", "cu"])
    assert out["g"] == {"rb": 70.0, "cu": -5.0}
    assert out["g/s2/u2"] == {"rb": -30.0}
    assert out["strategy:arb"] == {"rb": -30.0}


REASON = {"transfer": "SINGLE_TRANSFER_ABOVE_LIMIT", "day_outflow": "OUTFLOW_ABOVE_BASELINE"}


class Hit:
    def __init__(self, reason: str, value: float, threshold: float) -> None:
        self.reason, self.value, self.threshold = reason, value, threshold


def engine_of(**policy) -> RuleEngine:
    """The fund-flow rules a config's [accounts.fund_flow] stands for, in the one engine."""
    return RuleEngine(fund_flow_specs(FundFlowConfig(**policy)))


def judge_transfer(engine, ledger, day, amount, deposit, row=0):
    """What the shard does for a transfer: book it, then evaluate the transfer engine."""
    ledgers = {row: ledger}
    ledger.add(day, amount, deposit)
    source = TransferSource(day, {row: (amount, deposit)}, ledgers)
    fired = engine.evaluate(source, np.array([row]), 0.0)
    return [Hit(REASON[f.spec.metric], float(f.values[0]), float(f.limits[0])) for f in fired]


def test_outflow_above_baseline_and_single_transfer_limit():
    policy = engine_of(k=2, days=20, min_days=5, single_limit=1_000_000)
    ledger = FlowLedger()
    ledger.seed([{"day": f"202611{d:02d}", "withdraw": 10_000.0} for d in range(1, 21)])
    assert judge_transfer(policy, ledger, "20261201", 15_000, deposit=False) == []
    hits = judge_transfer(policy, ledger, "20261201", 6_000, deposit=False)  # 21,000 > 20,000
    assert [h.reason for h in hits] == ["OUTFLOW_ABOVE_BASELINE"]
    assert hits[0].value == 21_000 and hits[0].threshold == pytest.approx(20_000)
    big = judge_transfer(policy, ledger, "20261202", 2_000_000, deposit=True)
    assert [h.reason for h in big] == ["SINGLE_TRANSFER_ABOVE_LIMIT"]


def test_no_baseline_no_outflow_alarm():
    ledger = FlowLedger()
    ledger.seed([{"day": "20261130", "withdraw": 1.0}])
    assert judge_transfer(engine_of(), ledger, "20261201", 500.0, False) == []


def test_every_transfer_past_the_line_fires_each_judged_alone():
    """A transfer is a point event: the rule re-arms after each one (the ThresholdBank's
    hysteresis, re-armed at once), so two large transfers in a row are two events, with
    successive episodes; a withdrawal-only rule ignores deposits."""
    engine = RuleEngine([
        RuleSpec(id="big", kind="fund_flow", metric="transfer", threshold=100.0),
        RuleSpec(id="out", kind="fund_flow", metric="transfer", threshold=100.0,
                 params={"direction": "withdraw"}),
    ])  # fmt: skip
    ledger = FlowLedger()
    first = judge_transfer(engine, ledger, "20261201", 500.0, deposit=True)
    assert [h.value for h in first] == [500.0]
    second = judge_transfer(engine, ledger, "20261201", 600.0, deposit=False)
    assert sorted(h.value for h in second) == [600.0, 600.0]
    assert engine.groups[0].bank.episode("big", 0) == 2
    assert judge_transfer(engine, ledger, "20261201", 50.0, deposit=False) == []


def test_day_outflow_counts_the_whole_day_and_reports_the_line_in_money():
    engine = RuleEngine([
        RuleSpec(id="o", kind="fund_flow", metric="day_outflow", threshold=3.0,
                 params={"days": 2, "min_days": 2}),
    ])  # fmt: skip
    ledger = FlowLedger()
    ledger.seed([{"day": "20261129", "withdraw": 100.0}, {"day": "20261130", "withdraw": 300.0},
                 {"day": "20261101", "withdraw": 1e9}])  # outside the last 2 days  # fmt: skip
    assert judge_transfer(engine, ledger, "20261201", 500.0, False) == []  # 500 < 3 × 200
    [hit] = judge_transfer(engine, ledger, "20261201", 200.0, False)  # 700 > 600
    assert (hit.value, hit.threshold) == (700.0, 600.0)
    assert judge_transfer(engine, ledger, "20261201", 1e6, True) == []  # deposits: no outflow
