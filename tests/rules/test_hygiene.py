"""Alert hygiene stages: dedup → inhibit → silence → repeat → group."""

from __future__ import annotations

import pytest

from rules.engine.alerts import alert_labels, make_alert
from rules.engine.hygiene import Item, Pipeline, Silences, new_silence
from rules.engine.matchers import parse_matcher
from rules.engine.spec import Hygiene, InhibitRule
from rules.model import RiskEvent


def item(
    rule: str, key: str, severity: str = "warning", ts: float = 100.0, episode: int = 1, **attrs
) -> Item:
    ev = RiskEvent(
        rule, "account.risk_degree", key, severity, 0.9, 0.8, ts, ts, episode, "account", attrs
    )
    a = make_alert(ev, ts)
    return Item(a, alert_labels(a))


MUTE = InhibitRule(
    "liq",
    (parse_matcher("severity=critical"),),
    (parse_matcher("severity=warning"),),
    ("key",),
    600.0,
)


def pipeline(hygiene: Hygiene | None = None, inhibit=(MUTE,), repeat: float = 0.0) -> Pipeline:
    return Pipeline(
        hygiene or Hygiene(group_wait_s=1.0, group_interval_s=5.0),
        inhibit,
        Silences(),
        lambda _r: repeat,
    )


def test_matchers():
    labels = {"key": "ACC001", "rule": "account.risk_degree.warn", "severity": "warning"}
    assert parse_matcher("key=ACC001").matches(labels)
    assert parse_matcher("rule=~account\\..*").matches(labels)
    assert not parse_matcher("rule=~account").matches(labels)  # anchored
    assert parse_matcher("severity!=critical").matches(labels)
    assert parse_matcher('key!~"ACC00[2-9]"').matches(labels)
    with pytest.raises(ValueError, match="expected name=value"):
        parse_matcher("key ACC001")


def test_dedup_drops_a_repeated_alert_id():
    p = pipeline()
    first, again = item("w", "A"), item("w", "A")
    assert p.admit([first], 100.0) == [first]
    assert p.admit([again], 101.0) == [] and again.reason == "DUPLICATE"


def test_inhibition_same_batch_and_later_and_only_equal_keys():
    p = pipeline()
    warn_a, liq_a, warn_b = item("w", "A"), item("liq", "A", "critical"), item("w", "B")
    passed = p.admit([warn_a, liq_a, warn_b], 100.0)  # the worse one comes first within a batch
    assert passed == [liq_a, warn_b]
    assert warn_a.reason == "INHIBITED" and warn_a.by.startswith("liq by ")
    later = item("w2", "A", ts=400.0)
    assert p.admit([later], 400.0) == [] and later.reason == "INHIBITED"
    expired = item("w3", "A", ts=800.0)
    assert p.admit([expired], 800.0) == [expired]  # 700 s after the source: beyond 600 s


def test_silences_match_start_end_and_expire():
    silences = Silences()
    s = new_silence(["key=A", "rule=~w.*"], 100.0, 200.0, "risk.li", "client called", now=90.0)
    silences.add(s)
    p = Pipeline(Hygiene(), (), silences, lambda _r: 0.0)
    early, hit, other_rule, late = (
        item("w", "A", ts=99),
        item("w", "A", episode=2),
        item("x", "A"),
        item("w", "A", ts=201, episode=3),
    )
    assert p.admit([early], 99.0) == [early]
    assert p.admit([hit, other_rule], 150.0) == [other_rule]
    assert hit.reason == "SILENCED" and hit.by == s.id
    assert p.admit([late], 201.0) == [late]
    ended = silences.expire(s.id[:5], 120.0)
    assert ended.state(130.0) == "expired" and silences.listed(130.0) == []
    bad = [
        (([], 1, 2, "a", "b"), "matcher"),
        ((["key=~.*"], 1, 2, "a", "b"), "every"),
        ((["key=A"], 2, 1, "a", "b"), "end after"),
        ((["key=A"], 1, 2, "a", " "), "reason"),
    ]
    for args, why in bad:
        with pytest.raises(ValueError, match=why):
            new_silence(*args, now=0.0)


def test_repeat_interval_per_rule_and_key():
    p = pipeline(inhibit=(), repeat=60.0)
    a1, a2, b1, a3 = (
        item("w", "A"),
        item("w", "A", episode=2, ts=130),
        item("w", "B", ts=130),
        item("w", "A", episode=3, ts=161),
    )
    assert p.admit([a1], 100.0) == [a1]
    assert p.admit([a2, b1], 130.0) == [b1] and a2.reason == "REPEAT_INTERVAL"
    assert p.admit([a3], 161.0) == [a3]


def test_grouping_waits_then_sends_one_batch_and_later_additions_after_the_interval():
    p = pipeline(Hygiene(group_by=("rule_id",), group_wait_s=1.0, group_interval_s=5.0), inhibit=())
    p.admit([item("w", f"A{i}") for i in range(5)] + [item("x", "Z")], 100.0)
    assert p.group.due(100.5) == []
    batches = {b.group_key: b for b in p.group.due(101.0)}
    assert set(batches) == {"rule_id=w", "rule_id=x"}
    w = batches["rule_id=w"]
    assert [a.key for a in w.alerts] == [f"A{i}" for i in range(5)] and w.sequence == 1
    p.admit([item("w", "A9", ts=102)], 102.0)
    assert p.group.due(103.0) == []  # a notified group waits group_interval_s
    [later] = p.group.due(106.0)
    assert [a.key for a in later.alerts] == ["A9"] and later.members == 6 and later.sequence == 2


def test_group_by_labels():
    p = pipeline(Hygiene(group_by=("rule_id", "group_path"), group_wait_s=0.0), inhibit=())
    p.admit(
        [
            item("w", "A", group_path="g1"),
            item("w", "B", group_path="g2"),
            item("w", "C", group_path="g1"),
        ],
        0.0,
    )
    sizes = sorted((b.group_key, len(b.alerts)) for b in p.group.due(0.0))
    assert sizes == [("rule_id=w,group_path=g1", 2), ("rule_id=w,group_path=g2", 1)]
