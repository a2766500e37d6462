"""Action planning: from an alert's proposal and an account's state to orders, explained.

Pure and deterministic: the same account view and proposal always give the same legs, and every
leg and every skipped position carries its reason, so a risk manager (and an auditor) can see why.
Closing at market does not change equity (floating profit becomes close profit), it frees margin;
so reducing risk degree to a target means freeing `margin − target × equity` of margin.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from rules.display import percent, yuan

ACTION_KINDS = ("reduce", "liquidate", "margin_call", "freeze")
CLOSE_TODAY_EXCHANGES = ("SHFE", "INE")  # they distinguish closing today's from yesterday's
AGGRESSION_TICKS = 5  # limit price this many ticks through the market, clamped to the limits


@dataclass(frozen=True, slots=True)
class Leg:
    instrument: str
    direction: str  # order direction: "short" sells to close a long
    offset: str  # open / close / close_today
    volume: float
    limit_price: float
    reason: str


@dataclass(slots=True)
class Plan:
    kind: str
    account_id: str
    target_risk_degree: float
    legs: list[Leg] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    margin_call: float = 0.0
    projected_risk_degree: float = 0.0
    explanation: str = ""
    notional: float = 0.0  # value closed (reduce, liquidate) or called (margin call): its size
    deadline_s: float = 0.0  # margin call: seconds the client has to deposit
    trading_state: str = ""  # freeze: REDUCING (only orders that reduce exposure pass)

    def to_record(self) -> dict[str, Any]:
        return asdict(self)


def limit_locked_against(position: dict[str, Any]) -> bool:
    """A long cannot be sold at limit-down, a short cannot be bought back at limit-up."""
    last = position["last"]
    if position["direction"] == "long":
        lower = position.get("lower_limit", math.nan)
        return math.isfinite(lower) and last <= lower
    upper = position.get("upper_limit", math.nan)
    return math.isfinite(upper) and last >= upper


def limit_price(
    selling: bool, last: float, tick: float, upper: float, lower: float, ticks: int
) -> float:
    """A price `ticks` ticks through the market, never outside the day's limits.

    The exchange refuses an order priced outside [lower, upper]; a re-price after an unfilled
    wait passes a larger `ticks` (rules.orders.reprice_ticks)."""
    if selling:
        price = last - ticks * tick
        return max(price, lower) if math.isfinite(lower) else price
    price = last + ticks * tick
    return min(price, upper) if math.isfinite(upper) else price


def _limit_price(position: dict[str, Any], selling: bool) -> float:
    return limit_price(
        selling,
        position["last"],
        position.get("tick_size", 0.0) or 0.0,
        position.get("upper_limit", math.nan),
        position.get("lower_limit", math.nan),
        AGGRESSION_TICKS,
    )


def _close_legs(position: dict[str, Any], lots: float, reason: str) -> list[Leg]:
    """Legs to close `lots` of a position; SHFE/INE close today's lots with close_today."""
    selling = position["direction"] == "long"
    direction = "short" if selling else "long"
    price = _limit_price(position, selling)
    today = min(lots, position.get("today_volume", 0.0))
    if position.get("exchange") in CLOSE_TODAY_EXCHANGES and today > 0:
        legs = [Leg(position["instrument"], direction, "close_today", today, price, reason)]
        if lots - today > 0:
            legs.append(
                Leg(position["instrument"], direction, "close", lots - today, price, reason)
            )
        return legs
    return [Leg(position["instrument"], direction, "close", lots, price, reason)]


def _margin_per_lot(p: dict[str, Any]) -> float:
    return p["last"] * p["multiplier"] * p["margin_rate"]


def _loss_per_lot(p: dict[str, Any]) -> float:
    sign = 1.0 if p["direction"] == "long" else -1.0
    return max(0.0, -sign * (p["last"] - p["cost_price"]) * p["multiplier"])


def plan_action(
    view: dict[str, Any], kind: str, target: float = 0.8, deadline_s: float = 3600
) -> Plan:
    """Plan `kind` for the account `view` (as AccountBook.account_view returns it)."""
    if kind not in ACTION_KINDS:
        raise ValueError(f"unknown action kind {kind!r}; expected one of {ACTION_KINDS}")
    equity, margin = view["equity"], view["margin"]
    plan = Plan(kind=kind, account_id=view["account_id"], target_risk_degree=target)
    positions = [p for p in view["positions"] if p["volume"] > 0]
    if kind == "freeze":
        plan.projected_risk_degree = view["risk_degree"]
        plan.trading_state = "REDUCING"
        plan.explanation = "opening frozen: the account may only reduce (trading state REDUCING)"
        return plan
    if kind == "margin_call":
        needed = margin / target - equity if target > 0 else 0.0
        plan.margin_call = max(0.0, round(needed, 2))
        plan.notional = plan.margin_call
        plan.deadline_s = float(deadline_s)
        plan.projected_risk_degree = view["risk_degree"]
        plan.explanation = (
            f"deposit {plan.margin_call:,.2f} within {deadline_s:.0f} s to bring risk degree "
            f"{view['risk_degree']:.2%} to {target:.0%}"
        )
        return plan
    for p in positions:
        if not (math.isfinite(p["last"]) and p["last"] > 0):
            plan.skipped.append(
                {
                    "instrument": p["instrument"],
                    "direction": p["direction"],
                    "reason": "NO_PRICE: no market price for the contract yet",
                }
            )
        elif limit_locked_against(p):
            plan.skipped.append(
                {
                    "instrument": p["instrument"],
                    "direction": p["direction"],
                    "reason": "LIMIT_LOCKED: at its price limit against the position, cannot trade out",
                }
            )
    skipped = {(x["instrument"], x["direction"]) for x in plan.skipped}
    tradable = [p for p in positions if (p["instrument"], p["direction"]) not in skipped]
    if kind == "liquidate":
        for p in sorted(tradable, key=lambda p: (p["instrument"], p["direction"])):
            plan.legs += _close_legs(p, p["volume"], "liquidate all")
        # Never more than is charged: a lock under single-side margin is charged one side.
        freed = min(margin, sum(_margin_per_lot(p) * p["volume"] for p in tradable))
    else:
        # Free the most margin per unit of loss realised first; ties broken by name for determinism.
        ranked = sorted(
            tradable,
            key=lambda p: (
                -_margin_per_lot(p) / (1.0 + _loss_per_lot(p)),
                p["instrument"],
                p["direction"],
            ),
        )
        to_free = margin - target * equity
        freed = 0.0
        # Single-side margin (rules.margin): closing lots of a netting group's side frees at most
        # what that side is charged above the other side (`margin_side_excess`, shared by the
        # side's positions; 0 for the side not charged). Views without it free per lot.
        room: dict[tuple[str, str], float] = {}
        for p in ranked:
            if to_free - freed <= 1e-9:
                break
            per_lot = _margin_per_lot(p)
            side = (str(p.get("margin_group", p["instrument"])), p["direction"])
            left = room.setdefault(side, float(p.get("margin_side_excess", math.inf)))
            if per_lot <= 0 or left <= 1e-9:
                continue
            lots = min(p["volume"], math.ceil(min(to_free - freed, left) / per_lot - 1e-12))
            frees = min(lots * per_lot, left)
            room[side] = left - frees
            reason = (
                f"frees {per_lot:,.0f} margin per lot at a realised loss of {_loss_per_lot(p):,.0f} "
                f"per lot; {lots:g} of {p['volume']:g} lots"
            )
            if frees < lots * per_lot - 1e-9:
                reason += f" (single-side margin: frees {frees:,.0f} in all)"
            plan.legs += _close_legs(p, float(lots), reason)
            freed += frees
    remaining = margin - freed
    by_name = {p["instrument"]: p for p in tradable}
    plan.notional = round(
        sum(leg.volume * by_name[leg.instrument]["last"] * by_name[leg.instrument]["multiplier"]
            for leg in plan.legs),
        2,
    )  # fmt: skip
    plan.projected_risk_degree = remaining / equity if equity > 0 else math.inf
    if kind == "reduce" and plan.projected_risk_degree > target + 1e-9:
        plan.explanation = (
            f"cannot reach {target:.0%}: projected {plan.projected_risk_degree:.2%} after closing "
            f"all tradable positions ({len(plan.skipped)} locked)"
        )
    else:
        plan.explanation = (
            f"{kind}: {len(plan.legs)} legs free {freed:,.0f} margin, risk degree "
            f"{view['risk_degree']:.2%} → {plan.projected_risk_degree:.2%}"
        )
    return plan


def target_met(
    kind: str, target: float, view: dict[str, Any], skipped: int = 0, tolerance: float = 0.0
) -> bool:
    """Has the action done what it promised? reduce / margin call: risk degree at or below the
    target, within `tolerance` (a band of risk degree: prices move in ticks, so 70.01% against a
    70% target is met with the default band of the Executor, 0.05 percentage points); liquidate:
    nothing left open but the positions it had to skip (limit-locked)."""
    if not view:
        return False
    if kind == "liquidate":
        return sum(1 for p in view["positions"] if p["volume"] > 0) <= skipped
    if kind in ("reduce", "margin_call"):
        return view["risk_degree"] <= target + max(tolerance, 1e-9)
    return True


def moot_reason(kind: str, target: float, view: dict[str, Any], tolerance: float = 0.0) -> str:
    """Why an approved action has nothing left to do (the account no longer breaches), with the
    figures that made it so; "" when it still has. A freeze is never moot (it changes a state,
    not a figure)."""
    if not view or kind == "freeze" or not target_met(kind, target, view, 0, tolerance):
        return ""
    if kind == "liquidate":
        return "MOOT: no open position left to liquidate"
    return (
        f"MOOT: risk degree {percent(view['risk_degree'], 2)} already at or below the target "
        f"{percent(target, 2)} (tolerance {tolerance * 100:.2f} pp), equity "
        f"{yuan(view['equity'])}, margin {yuan(view['margin'])}"
    )
