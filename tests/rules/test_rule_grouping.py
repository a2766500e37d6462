"""Grouping happens once, in the hygiene's group stage: it batches a shock's alerts and says
whether a batch is one digest notification (more than `digest_over` alerts) or one per alert,
so the Notifier has nothing left to group."""

from __future__ import annotations

import pytest
import tomllib

from infra import rulesets
from infra.rulesets import RulesetError
from rules.engine.hygiene import Pipeline, Silences
from rules.engine.spec import Hygiene
from tests.rules.test_hygiene import item


def test_a_batch_beyond_digest_over_is_one_digest_smaller_ones_go_alert_by_alert():
    p = Pipeline(Hygiene(group_wait_s=1.0, group_interval_s=5.0, digest_over=3), (), Silences(),
                 lambda _r: 0.0)  # fmt: skip
    p.admit([item("w", f"A{i}") for i in range(5)] + [item("x", "B0"), item("x", "B1")], 100.0)
    batches = {b.group_key: b for b in p.group.due(101.5)}
    assert batches["rule_id=w"].digest and len(batches["rule_id=w"].alerts) == 5
    assert not batches["rule_id=x"].digest and len(batches["rule_id=x"].alerts) == 2
    p.admit([item("w", "A9")], 102.0)  # an addition to a notified group: after the interval
    assert p.group.due(103.0) == []
    [later] = p.group.due(107.0)
    assert (later.sequence, later.members, later.digest) == (2, 6, False)


def test_digest_over_is_a_hygiene_key_of_rules_files():
    rs = rulesets.parse(tomllib.loads("[hygiene]\ndigest_over = 10\n"), "h.toml")
    assert rs.hygiene.digest_over == 10
    with pytest.raises(RulesetError, match="h.toml: hygiene.digest_over: expected a whole"):
        rulesets.parse(tomllib.loads("[hygiene]\ndigest_over = 0.5\n"), "h.toml")
