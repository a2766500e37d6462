"""The kinds that had their own evaluators — book limits, market statistics rules, fund flows —
as rule-engine kinds: loaded from rules files, validated the same way, evaluated by the one
engine with its one hysteresis (ThresholdBank), state kept across a hot reload."""

from __future__ import annotations

import numpy as np
import pytest

from infra import rulesets
from infra.rulesets import RulesetError
from rules.engine.book_limits import BookLimits
from rules.engine.kinds.market_set import MarketRuleSet, SilenceState
from rules.market_stats import SliceSignals

WINDOWS = (60, 300, 1800)


def parse(text: str):
    import tomllib

    return rulesets.parse(tomllib.loads(text), "r.toml", WINDOWS)


def figures(net_units: float, units: dict[str, float] | None = None) -> dict:
    by_unit = {u: {"net_units": v, "net_value": v * 10.0} for u, v in (units or {}).items()}
    return {"commodity": "rb", "net_units": net_units, "net_value": net_units * 10.0,
            "mark_price": 10.0, "by_unit": by_unit}  # fmt: skip


BOOK_RULES = """
[[rules]]
id = "rb.net"
metric = "abs_net_units"
scope = "commodity"
threshold = 1500
rearm = 1200
severity = "critical"
commodities = ["rb"]

[[rules]]
id = "unit.value"
metric = "abs_net_value"
scope = "business_unit"
threshold = 20000
rearm = 15000

[[rules]]
id = "cu.only"
metric = "net_units"
scope = "commodity"
threshold = 1
commodities = ["cu"]
"""


def test_book_limits_fire_once_rearm_past_the_line_and_keep_state_on_reload():
    rs = parse(BOOK_RULES)
    assert {r.id for r in rulesets.placed(rs, "books")} == {"rb.net", "unit.value", "cu.only"}
    limits = BookLimits("rb")
    limits.replace(rs.rules)
    assert limits.ids == ["rb.net", "unit.value"]  # cu.only covers another book

    def hits(net, units=None):
        return [
            (h.spec.id, h.key, h.value, h.episode)
            for h in limits.evaluate(figures(net, units), 0.0)
        ]

    assert hits(-1600, {"desk1": 100}) == [("rb.net", "rb", 1600.0, 1)]  # abs_: the size
    assert hits(-1700, {"desk1": 100}) == []  # still beyond: once
    assert hits(-1300, {"desk1": 2500}) == [("unit.value", "rb/desk1", 25000.0, 1)]  # not re-armed
    assert hits(-1100) == []  # re-armed below 1200; desk1 not reported: not judged
    assert hits(-1600, {"desk1": 2600}) == [("rb.net", "rb", 1600.0, 2)]  # desk1 still disarmed
    report = limits.replace(rs.rules)  # hot reload of the same rules: nothing fires again
    assert sorted(report["kept"]) == ["rb.net", "unit.value"] and not report["added"]
    assert hits(-1600, {"desk1": 2600}) == []
    changed = parse(BOOK_RULES.replace("threshold = 1500", "threshold = 1550"))
    limits.replace(changed.rules)  # a changed rule starts afresh
    assert hits(-1600, {"desk1": 2600}) == [("rb.net", "rb", 1600.0, 1)]


def test_book_rules_are_validated_like_every_rule():
    with pytest.raises(RulesetError, match=r"r.toml: rules\[0\] \(b\).metric: 'happiness'"):
        parse('[[rules]]\nid = "b"\nscope = "commodity"\nmetric = "happiness"\nthreshold = 1')
    with pytest.raises(RulesetError, match=r"rules\[0\] \(b\).commodities: expected tuple"):
        parse('[[rules]]\nid = "b"\nscope = "commodity"\nmetric = "net_units"\ncommodities = 3')


MARKET_RULES = """
[[rules]]
id = "near"
kind = "near_limit"
threshold = 0.01
rearm = 0.015

[[rules]]
id = "spike"
kind = "volume_spike"
threshold = 8
rearm = 2
products = ["rb"]

[[rules]]
id = "stale"
kind = "stale"
threshold = 30
rearm = 5

[[rules]]
id = "silent"
kind = "feed_silent"
threshold = 10
rearm = 2
severity = "critical"
"""


def signals(rows, near, volume):
    n = len(rows)
    zeros = np.zeros(n)
    return SliceSignals(
        rows=np.asarray(rows), second=0, ts=zeros, last=np.full(n, 100.0), jump_z=zeros,
        jump_move=zeros, near_limit=np.asarray(near, float), limit_side=np.zeros(n, np.int8),
        locked=np.zeros(n, bool), volume_ratio=np.asarray(volume, float), oi_ratio=zeros,
        rv={300: zeros},
    )  # fmt: skip


def test_market_statistics_kinds_from_a_rules_file_through_the_one_hysteresis():
    rs = parse(MARKET_RULES)
    specs = rulesets.placed(rs, "market")
    by_id = {s.id: s for s in specs}
    assert by_id["near"].op == "<" and by_id["spike"].op == ">"  # the kind fixes its operator
    assert by_id["silent"].scope == "feed" and by_id["stale"].scope == "contract"
    market = MarketRuleSet(specs, WINDOWS)
    market.add_rows(["rb2601", "cu2601"], ["rb", "cu"])
    bits = np.zeros(2, dtype=np.int64)

    def fired(near, volume):
        return {
            f.rule.id: f.rows.tolist() for f in market.on_slice(signals([0, 1], near, volume), bits)
        }

    assert fired([0.005, 0.5], [9.0, 9.0]) == {"near": [0], "spike": [0]}  # spike: rb only
    assert fired([0.004, 0.5], [10.0, 9.0]) == {}  # once per crossing
    assert fired([0.012, 0.5], [1.0, 1.0]) == {}  # near: 0.012 is not past its re-arm 0.015
    assert fired([0.005, 0.5], [9.0, 1.0]) == {"spike": [0]}
    assert fired([0.02, 0.5], [1.0, 1.0]) == {}
    assert fired([0.005, 0.5], [1.0, 1.0]) == {"near": [0]}
    assert market.episode(market.of_kind("near_limit")[0], 0) == 2
    # Hot reload: unchanged rules keep their per-contract state, a changed one starts afresh.
    changed = parse(MARKET_RULES.replace("threshold = 8", "threshold = 7"))
    market = market.carry_over(rulesets.placed(changed, "market"), WINDOWS, ["rb2601", "cu2601"],
                               ["rb", "cu"])  # fmt: skip
    assert fired([0.001, 0.5], [9.0, 9.0]) == {"spike": [0]}
    silence = SilenceState(by_id["silent"])
    assert silence.check(11.0, True) and not silence.check(20.0, True)
    assert not silence.check(1.0, True) and silence.armed and silence.episode == 1


def test_market_kinds_are_validated_with_file_rule_and_key():
    with pytest.raises(RulesetError, match=r"rules\[0\] \(n\).op: kind 'near_limit' fires '<'"):
        parse('[[rules]]\nid = "n"\nkind = "near_limit"\nop = ">"\nthreshold = 0.01')
    with pytest.raises(RulesetError, match=r"rules\[0\] \(s\).products: unknown key for kind"):
        parse('[[rules]]\nid = "s"\nkind = "feed_silent"\nthreshold = 10\nproducts = ["rb"]')
    with pytest.raises(RulesetError, match=r"rules\[0\] \(v\).window_s: must be one of"):
        parse('[[rules]]\nid = "v"\nkind = "volatility"\nthreshold = 1\nwindow_s = 120')


def test_fund_flow_rules_load_from_a_file_and_are_validated():
    rs = parse(
        '[[rules]]\nid = "ff"\nkind = "fund_flow"\nmetric = "day_outflow"\nthreshold = 2\n'
        "days = 10\nmin_days = 3\n"
    )
    [spec] = rulesets.placed(rs, "transfers")
    assert spec.params == {"days": 10, "min_days": 3, "direction": "any"}
    with pytest.raises(RulesetError, match=r"rules\[0\] \(ff\).metric: must be one of"):
        parse('[[rules]]\nid = "ff"\nkind = "fund_flow"\nmetric = "equity"\nthreshold = 2')
    with pytest.raises(RulesetError, match=r"rules\[0\] \(ff\).direction: must be one of"):
        parse('[[rules]]\nid = "ff"\nkind = "fund_flow"\nmetric = "transfer"\ndirection = "up"')
