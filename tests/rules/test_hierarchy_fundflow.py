from __future__ import annotations

import numpy as np
import pytest

from rules.fundflow import FlowLedger, FundFlowPolicy, judge_transfer
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


def test_outflow_above_baseline_and_single_transfer_limit():
    policy = FundFlowPolicy(k=2, days=20, min_days=5, single_limit=1_000_000)
    ledger = FlowLedger()
    ledger.seed([{"day": f"202611{d:02d}", "withdraw": 10_000.0} for d in range(1, 21)])
    assert judge_transfer(ledger, "20261201", 15_000, deposit=False, policy=policy) == []
    hits = judge_transfer(
        ledger, "20261201", 6_000, deposit=False, policy=policy
    )  # 21,000 > 20,000
    assert [h.reason for h in hits] == ["OUTFLOW_ABOVE_BASELINE"]
    assert hits[0].value == 21_000 and hits[0].threshold == pytest.approx(20_000)
    big = judge_transfer(ledger, "20261202", 2_000_000, deposit=True, policy=policy)
    assert [h.reason for h in big] == ["SINGLE_TRANSFER_ABOVE_LIMIT"]


def test_no_baseline_no_outflow_alarm():
    ledger = FlowLedger()
    ledger.seed([{"day": "20261130", "withdraw": 1.0}])
    assert judge_transfer(ledger, "20261201", 500.0, False, FundFlowPolicy()) == []
