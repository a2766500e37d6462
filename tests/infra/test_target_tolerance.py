"""`[approval] target_tolerance` (issue 19): the band within which a proposal's target risk degree
counts as met — a key of the config, checked at load, and the one the Executor's verify step
uses."""

from __future__ import annotations

import pytest

from actors.execution.settings import executor_settings
from infra import config
from infra.config import ConfigError
from rules.execution.messages import ProposalsSubmitted
from rules.model import ActionProposal
from tests.rules.execution_world import World, view


def _verify(cfg: config.Config, risk_after: float) -> dict:
    """One reduce proposal to 80 %, approved and filled; the account then reads `risk_after`.
    Returns its proposal_closed record (the verify step with the config's settings)."""
    settings = executor_settings(cfg).execution
    w = World(settings=settings)
    w.views["A1"] = view("A1", 20, 60_000)  # 100 %
    w.run(ProposalsSubmitted((ActionProposal("P1", "al-1", "A1", "reduce", 0.8, w.now),),
                             "system", {"A1": w.views["A1"]}))  # fmt: skip
    w.decide("approve", ["P1"], "ops")
    [ref] = w.machine.state.orders_of["P1"]
    w.report(ref, "filled", 4, price=3000.0)
    after = view("A1", 16, 60_000)
    after["risk_degree"] = risk_after
    w.views["A1"] = after
    w.tick(w.now + 0.1)
    w.tick(w.now + settings.verify_timeout_s + 1)
    [closed] = w.kinds("proposal_closed")
    return closed


def test_the_default_is_the_documented_band_of_005_percentage_points():
    cfg = config.default()
    assert cfg.approval.target_tolerance == 0.0005
    assert executor_settings(cfg).execution.target_tolerance == 0.0005
    assert _verify(cfg, 0.8004)["state"] == "done"  # 80.04 % against 80 %: within 0.05 pp
    closed = _verify(cfg, 0.8008)
    assert closed["state"] == "failed"
    assert closed["reason"].startswith("TARGET_NOT_MET: risk degree 80.08% > target 80.00%")
    assert "(tolerance 0.05 pp)" in closed["reason"]


def test_the_configured_band_is_the_one_the_verify_step_uses():
    cfg = config.from_dict({"approval": {"target_tolerance": 0.001}}, source="<test>")
    assert executor_settings(cfg).execution.target_tolerance == 0.001
    assert _verify(cfg, 0.8008)["state"] == "done"  # within 0.1 pp now
    strict = config.from_dict({"approval": {"target_tolerance": 0}}, source="<test>")
    assert _verify(strict, 0.8001)["state"] == "failed"


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (0.05, "approval.target_tolerance: must be a fraction of risk degree from 0 to below 0.01"),
        (-0.0001, "approval.target_tolerance: must be a fraction"),
        (float("nan"), "approval.target_tolerance: must be a fraction"),
        ("0.0005", "approval.target_tolerance: expected a number"),
        (True, "approval.target_tolerance: expected a number"),
    ],
)
def test_a_bad_band_is_refused_at_load_naming_the_key(value, why):
    with pytest.raises(ConfigError, match="^<test>: " + why):
        config.from_dict({"approval": {"target_tolerance": value}}, source="<test>")


def test_a_misspelt_key_gets_a_did_you_mean():
    with pytest.raises(ConfigError, match="did you mean 'target_tolerance'"):
        config.from_dict({"approval": {"target_tolerence": 0.0005}}, source="<test>")


def test_the_example_approval_config_sets_it():
    assert config.load("examples/approval.toml").approval.target_tolerance == 0.0005


def test_the_demo_market_jumps_are_a_probability():
    assert config.default().sim.jump_prob == 0.0  # calm until the shock
    with pytest.raises(ConfigError, match=r"^<test>: sim.jump_prob: must be a probability"):
        config.from_dict({"sim": {"jump_prob": 1.5}}, source="<test>")
