"""Composite rules: events of several dimensions within a window, joined on keys."""

from __future__ import annotations

from rules.engine.kinds.composite import CompositeMatcher
from rules.engine.spec import RuleSpec
from rules.model import RiskEvent


def ev(
    rule: str, key: str, ts: float, dimension: str = "account", episode: int = 1, **attrs
) -> RiskEvent:
    kind = {"account": "account.risk_degree", "market": "market.jump", "operating": "operating.x"}[
        dimension
    ]
    return RiskEvent(rule, kind, key, "warning", 0.9, 0.8, ts, ts, episode, dimension, attrs)


RISK_AND_JUMP = RuleSpec(
    id="combo", kind="composite", scope="any", severity="critical", action={"kind": "reduce", "target": 0.7},
    params={"join": "holds", "within_s": 60.0,
            "when": [["dimension=account", "rule=~warn.*"], ["dimension=market", "kind=market.jump"]]},
)  # fmt: skip


def test_account_and_a_jump_on_a_held_contract_within_the_window():
    m = CompositeMatcher([RISK_AND_JUMP])
    assert m.on_events([ev("warn", "A1", 100.0, instruments=["rb2601", "cu2601"]),
                        ev("warn", "A2", 101.0, instruments=["au2602"])]) == []  # fmt: skip
    [out] = m.on_events([ev("jump", "rb2601", 130.0, "market")])
    assert (out.rule_id, out.key, out.severity, out.dimension) == (
        "combo",
        "A1",
        "critical",
        "composite",
    )
    assert out.attributes["joined_on"] == "rb2601" and out.ts == 130.0
    assert {c["key"] for c in out.attributes["components"]} == {"A1", "rb2601"}
    assert out.action == {"kind": "reduce", "target": 0.7}
    assert m.on_events([ev("jump", "rb2601", 131.0, "market")]) == []  # same combination: once


def test_order_does_not_matter_and_one_jump_fans_out_to_every_holder():
    m = CompositeMatcher([RISK_AND_JUMP])
    m.on_events([ev("jump", "rb2601", 100.0, "market")])
    got = m.on_events([ev("warn", "A1", 120.0, instruments=["rb2601"]),
                       ev("warn", "A2", 125.0, instruments=["rb2601"])])  # fmt: skip
    assert sorted(e.key for e in got) == ["A1", "A2"]


def test_partial_matches_expire_with_the_window():
    m = CompositeMatcher([RISK_AND_JUMP])
    m.on_events([ev("warn", "A1", 100.0, instruments=["rb2601"])])
    assert m.on_events([ev("jump", "rb2601", 161.0, "market")]) == []  # 61 s later
    m.expire(300.0)
    assert m.pending() == 0


def test_a_new_episode_is_a_new_combination():
    m = CompositeMatcher([RISK_AND_JUMP])
    m.on_events([ev("warn", "A1", 100.0, instruments=["rb2601"])])
    assert len(m.on_events([ev("jump", "rb2601", 110.0, "market", episode=1)])) == 1
    assert len(m.on_events([ev("jump", "rb2601", 120.0, "market", episode=2)])) == 1


def test_exposure_and_basis_on_the_same_commodity():
    rule = RuleSpec(id="eb", kind="composite", scope="any",
                    params={"join": "key", "within_s": 600.0,
                            "when": [["rule=book.exposure"], ["rule=book.basis"]]})  # fmt: skip
    m = CompositeMatcher([rule])
    m.on_events(
        [ev("book.exposure", "rb", 0.0, "operating"), ev("book.basis", "cu", 10.0, "operating")]
    )
    [out] = m.on_events([ev("book.basis", "rb", 20.0, "operating")])
    assert out.key == "rb" and out.action is None


def test_commodity_join_maps_contracts_to_products():
    rule = RuleSpec(id="cj", kind="composite", scope="any",
                    params={"join": "commodity", "within_s": 60.0,
                            "when": [["dimension=operating"], ["dimension=market"]]})  # fmt: skip
    m = CompositeMatcher([rule])
    m.on_events([ev("lim", "rb", 0.0, "operating", commodity="rb")])
    assert [e.key for e in m.on_events([ev("jump", "rb2601", 5.0, "market", product="rb")])] == [
        "rb"
    ]


def test_replace_keeps_partial_matches_of_unchanged_rules():
    m = CompositeMatcher([RISK_AND_JUMP])
    m.on_events([ev("warn", "A1", 100.0, instruments=["rb2601"])])
    m.replace([RISK_AND_JUMP])
    assert len(m.on_events([ev("jump", "rb2601", 110.0, "market")])) == 1
