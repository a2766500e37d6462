from __future__ import annotations

import math

import pytest

from rules.actions import plan_action


def _pos(
    instrument,
    direction,
    volume,
    cost,
    last,
    mult,
    rate,
    exchange="SHFE",
    today=0.0,
    lower=math.nan,
    upper=math.nan,
):
    return {
        "instrument": instrument,
        "direction": direction,
        "volume": volume,
        "today_volume": today,
        "cost_price": cost,
        "last": last,
        "multiplier": mult,
        "margin_rate": rate,
        "exchange": exchange,
        "tick_size": 1.0,
        "lower_limit": lower,
        "upper_limit": upper,
    }


def _view(positions, equity):
    margin = sum(p["last"] * p["volume"] * p["multiplier"] * p["margin_rate"] for p in positions)
    return {
        "account_id": "A",
        "equity": equity,
        "margin": margin,
        "risk_degree": margin / equity,
        "positions": positions,
    }


def test_reduce_frees_enough_margin_and_explains_each_leg():
    # rb: 3000×10×10% = 3,000 margin per lot; 20 lots → 60,000 margin on 60,000 equity (100%).
    view = _view([_pos("rb2601", "long", 20, 3000, 3000, 10, 0.10)], equity=60_000)
    plan = plan_action(view, "reduce", target=0.8)
    # needs 60,000 − 48,000 = 12,000 freed → 4 lots
    assert [(leg.instrument, leg.direction, leg.offset, leg.volume) for leg in plan.legs] == [
        ("rb2601", "short", "close", 4.0)
    ]
    assert plan.projected_risk_degree == pytest.approx(0.8)
    assert "per lot" in plan.legs[0].reason


def test_limit_locked_position_is_skipped_with_reason_and_shfe_closes_today_first():
    locked = _pos("rb2601", "long", 10, 3000, 2850, 10, 0.10, lower=2850)
    free = _pos("cu2601", "long", 2, 80000, 80000, 5, 0.10, today=1)
    view = _view([locked, free], equity=60_000)
    plan = plan_action(view, "reduce", target=0.5)
    assert plan.skipped and plan.skipped[0]["instrument"] == "rb2601"
    assert plan.skipped[0]["reason"].startswith("LIMIT_LOCKED")
    offsets = [(leg.instrument, leg.offset, leg.volume) for leg in plan.legs]
    assert offsets == [("cu2601", "close_today", 1.0), ("cu2601", "close", 1.0)]


def test_margin_call_and_plan_is_deterministic():
    view = _view([_pos("rb2601", "long", 20, 3000, 3000, 10, 0.10)], equity=60_000)
    call = plan_action(view, "margin_call", target=0.8)
    assert call.margin_call == pytest.approx(60_000 / 0.8 - 60_000)
    assert plan_action(view, "reduce").to_record() == plan_action(view, "reduce").to_record()
