"""[cluster] reconcile_s: the supervisor's round (how long a dead actor waits for a rebuild)."""

from __future__ import annotations

import pytest

from infra import config
from infra.config.errors import ConfigError


def test_the_default_the_example_and_a_bad_value_named_by_its_key():
    assert config.from_dict({}, source="<t>").cluster.reconcile_s == 5.0
    assert config.load("examples/fengkong.toml").cluster.reconcile_s == 5.0
    assert (
        config.from_dict({"cluster": {"reconcile_s": 0.5}}, source="<t>").cluster.reconcile_s == 0.5
    )
    for bad in (0, -1, 3601):
        with pytest.raises(ConfigError, match=r"cluster\.reconcile_s: must be a number of seconds"):
            config.from_dict({"cluster": {"reconcile_s": bad}}, source="<t>")
    for bad in (True, "5"):  # the loader's type check names the key too
        with pytest.raises(ConfigError, match=r"<t>: cluster\.reconcile_s: expected a number"):
            config.from_dict({"cluster": {"reconcile_s": bad}}, source="<t>")
