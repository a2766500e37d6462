"""volatility and jump: market rules on a contract's statistics, evaluated by the MarketFeed
(and by the backtest) with rules.market_stats and rules.market_rules.

- volatility: annualized realized volatility over `window_s` (one of the feed's volatility
  windows) above the threshold;
- jump: the largest move over the feed's jump window, in multiples of its expected size.

`products` restricts a rule to product codes or instrument ids; `sessions` to named sessions.
A rule set's market rules are added to the feed's own (config `[[market.rules]]`); hot reload
replaces them, and rules that did not change keep their per-contract arming state.
"""

from __future__ import annotations

from typing import Any

from rules.engine.spec import RuleSpec, check_common
from rules.engine.template import Param, RuleKind
from rules.market_rules import MarketRule, MarketRuleSet


class _MarketKind(RuleKind):
    scopes = ("contract",)
    needs_metric = False

    def place(self, spec: RuleSpec) -> str:
        return "market"

    def check(self, spec: RuleSpec, metrics: Any) -> None:
        check_common(spec)
        if spec.scope not in self.scopes:
            raise ValueError(f"scope: kind {self.name!r} runs on contracts, got {spec.scope!r}")
        if not spec.op.startswith(">"):
            raise ValueError(f"op: kind {self.name!r} fires above its threshold, use '>'")
        try:
            MarketRule(**market_rule(spec))
        except ValueError as exc:
            raise ValueError(str(exc).split(": ", 1)[-1]) from None


class VolatilityKind(_MarketKind):
    name = "volatility"
    params = (
        Param(
            "window_s", int, 300, "realized-volatility window (one of market.stats.vol_windows_s)"
        ),
        Param("products", tuple, None, "only these products or instruments"),
    )


class JumpKind(_MarketKind):
    name = "jump"
    params = (Param("products", tuple, None, "only these products or instruments"),)


def market_rule(spec: RuleSpec) -> dict[str, Any]:
    """The MarketRule record of a volatility or jump rule."""
    return {
        "id": spec.id,
        "kind": spec.kind,
        "threshold": float(spec.threshold),
        "rearm": float(spec.rearm_level),
        "severity": spec.severity,
        "sessions": tuple(spec.sessions),
        "products": tuple(spec.param("products") or ()),
        "window_s": int(spec.param("window_s", 0) or 0),
        "description": spec.description,
    }


def carry_over(
    old: MarketRuleSet, rules: list[MarketRule], vol_windows: tuple[int, ...],
    names: list[str], products: list[str],
) -> MarketRuleSet:  # fmt: skip
    """A new MarketRuleSet for a feed's known contracts; rules equal to an old one keep its
    per-contract arming state and episodes (hot reload fires nothing twice)."""
    new = MarketRuleSet(rules, vol_windows)
    if names:
        new.add_rows(list(names), list(products))
    before = {r: i for i, r in enumerate(old.rules)}
    for i, rule in enumerate(new.rules):
        j = before.get(rule)
        if j is not None:
            new._state[i] = old._state[j]
    return new


def market_rules_from(records: list[dict[str, Any]]) -> list[MarketRule]:
    return [
        MarketRule(**{**r, "sessions": tuple(r.get("sessions") or ()),
                      "products": tuple(r.get("products") or ())})
        for r in records
    ]  # fmt: skip
