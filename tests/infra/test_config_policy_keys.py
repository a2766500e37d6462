"""`[[accounts.policies]]` keys single_side and fee_multiplier: validated, with did-you-mean,
and passed into AccountPolicy."""

from __future__ import annotations

import dataclasses

import pytest

from infra import config
from rules.book import AccountPolicy

HAS_KEYS = {"single_side", "fee_multiplier"} <= {f.name for f in dataclasses.fields(AccountPolicy)}


def _cfg(policy: dict):
    return config.from_dict({"accounts": {"policies": [policy]}}, source="<test>")


def test_unknown_policy_key_is_named():
    with pytest.raises(config.ConfigError, match=r"accounts\.policies\[0\]\.colour: unknown key"):
        _cfg({"match": "*", "colour": "red"})


def test_policy_keys_reach_account_policy():
    cfg = _cfg({"match": "grpA/*", "single_side": "off", "fee_multiplier": 1.5})
    policy = AccountPolicy(**cfg.accounts.policies[0])
    assert (policy.single_side, policy.fee_multiplier) == ("off", 1.5)
    default = AccountPolicy(**_cfg({"match": "*"}).accounts.policies[0])
    assert (default.single_side, default.fee_multiplier) == ("exchange", 1.0)


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ({"single_side": "both"}, r"policies\[0\]\.single_side: must be 'exchange' or 'off'"),
        ({"fee_multiplier": -1}, r"policies\[0\]\.fee_multiplier: must be a number"),
        ({"fee_multiplier": "2"}, r"policies\[0\]\.fee_multiplier: must be a number"),
        ({"fee_multipler": 2.0}, r"did you mean 'fee_multiplier'"),
        ({"singleside": "off"}, r"did you mean 'single_side'"),
    ],
)
def test_bad_policy_values_are_named(policy, message):
    with pytest.raises(config.ConfigError, match=message):
        _cfg({"match": "*", **policy})
