"""`fengkong stress` on a running system: every shard stresses its live book, results merged.

Hand-made accounts on rb2601 at 3,000 (multiplier 10, margin 7%: 21,000 for 10 lots), black-open-7
takes rb to 2,790 (7% under the previous settlement): a long of 10 lots loses 21,000 and its margin
becomes 19,530. The figures below are worked by hand, to the yuan.
"""

from __future__ import annotations

import json

import pytest
import ray

from app.cli import main
from app.stress_command import live_stress
from app.stress_morning import run_morning
from infra.specs import load_contract_table
from infra.stress_io import load_scenarios
from tests.integration.harness import account_at_risk, start_harness
from tests.zmq_util import wait_until

RB = "rb2601"
PRICE = 3000.0
MARGIN_AFTER = 2790.0 * 10 * 10 * 0.07  # 19,530


@pytest.fixture(scope="module")
def world(ray_local, tmp_path_factory):
    h = start_harness(
        tmp_path_factory.mktemp("stress"),
        {RB: PRICE},
        ["rb"],
        stress={"morning": "08:45", "scenarios": ["black-open-7", "all-up-5"], "target": 0.8},
    )
    table = load_contract_table()
    h.send_accounts(
        [
            account_at_risk("SA", RB, "long", 10, PRICE, 0.5, table),  # balance 42,000
            account_at_risk("SB", RB, "long", 10, PRICE, 0.7, table),  # balance 30,000
            account_at_risk("SC", RB, "short", 10, PRICE, 0.9, table),  # balance 23,333.33
        ]
    )

    def loaded() -> bool:
        degrees: dict[str, float] = {}
        for part in ray.get([s.risk_degrees.remote() for s in h.system.shards]):
            degrees.update(part)
        return len(degrees) == 3 and degrees["SB"] == pytest.approx(0.7)

    def priced() -> bool:  # the accounts can land before the first tick reaches every shard
        return not live_stress(h.system.shards, load_scenarios()["black-open-7"], 0.8).unpriced

    assert wait_until(loaded, 20) and wait_until(priced, 20)
    yield h
    h.stop()


def test_live_stress_matches_hand_figures(world):
    scenario = load_scenarios()["black-open-7"]
    result = live_stress(world.system.shards, scenario, 0.8)
    rows = {r["account_id"]: r for r in (result.row(i) for i in range(len(result.account_ids)))}
    assert sorted(rows) == ["SA", "SB", "SC"]
    a, b, c = rows["SA"], rows["SB"], rows["SC"]
    assert a["equity_after"] == pytest.approx(42_000 - 21_000)
    assert a["margin_after"] == pytest.approx(MARGIN_AFTER)
    assert not a["past_line"] and a["margin_call"] == pytest.approx(MARGIN_AFTER / 0.8 - 21_000)
    assert b["equity_after"] == pytest.approx(9_000) and b["past_line"] and not b["bust"]
    assert b["shortfall_to_line"] == pytest.approx(MARGIN_AFTER - 9_000)  # 10,530
    assert b["margin_call"] == pytest.approx(MARGIN_AFTER / 0.8 - 9_000)  # 15,412.50
    assert c["equity_after"] == pytest.approx(21_000 / 0.9 + 21_000) and c["margin_call"] == 0
    assert result.summary()["past_line"] == 1
    assert result.loss_by_commodity == {"rb": pytest.approx(21_000 + 21_000 - 21_000)}


def test_stress_command_on_the_running_system(world, tmp_path, capsys):
    cfg = tmp_path / "live.toml"
    cfg.write_text("[accounts]\nshards = 2\n")
    argv = ["stress", "--scenario", "black-open-7", "--config", str(cfg),
            "--prefix", world.system.prefix]  # fmt: skip
    assert main([*argv, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["summary"]["accounts"] == 3 and report["summary"]["past_line"] == 1
    assert report["top"][0]["account_id"] == "SB"
    assert report["summary"]["margin_call"] == pytest.approx(
        (MARGIN_AFTER / 0.8 - 21_000) + (MARGIN_AFTER / 0.8 - 9_000)
    )
    out = tmp_path / "out"
    assert main([*argv, "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "live book of 3 accounts" in text and "past the line 1" in text
    assert "echarts.init" in (out / "stress-black-open-7.html").read_text()


def test_morning_run_notifies_the_desk_and_proposes_margin_calls(world):
    settings = world.cfg.edges["stress"]  # validated by app.stress_morning when loaded
    out = run_morning(world.system.shards, world.system.notifier, world.system.executor, settings)
    # black-open-7 puts the long SB past the line (call 15,412.50 back to 80%); all-up-5 takes rb
    # to 3,150: the short SC loses 15,000, equity 8,333.33 against margin 22,050 (call 19,229.17).
    assert out["margin_calls"] == {
        "SB": pytest.approx(MARGIN_AFTER / 0.8 - 9_000),
        "SC": pytest.approx(3150 * 100 * 0.07 / 0.8 - (21_000 / 0.9 - 15_000)),
    }
    assert [s["scenario"] for s in out["scenarios"]] == ["black-open-7", "all-up-5"]

    def paged() -> list[dict]:
        pages = ray.get(world.system.notifier.alerts.remote())
        return [p for p in pages if out["alert_id"] in p["alert_ids"]]

    assert wait_until(lambda: len(paged()) == 1, 15)
    page = paged()[0]
    assert page["severity"] == "warning" and "2 accounts past the line" in page["title"]
    pending = ray.get(world.system.executor.pending.remote())
    calls = {p["account_id"]: p for p in pending if p["kind"] == "margin_call"}
    assert sorted(calls) == ["SB", "SC"] and calls["SB"]["target_risk_degree"] == 0.8
    assert "morning stress" in calls["SB"]["reason"]
