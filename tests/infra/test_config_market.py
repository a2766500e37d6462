"""Config of the market and operating dimensions: feed roles, market rules, book limits."""

from __future__ import annotations

import pytest

from infra import config
from infra.config import ConfigError

FEEDS = [{"name": "a", "endpoint": "tcp://127.0.0.1:1"}]


def test_backup_feed_must_name_an_existing_primary_once():
    ok = config.from_dict(
        {"market": {"feeds": FEEDS + [{"name": "b", "endpoint": "tcp://127.0.0.1:2",
                                        "role": "backup", "primary": "a"}]}}
    )  # fmt: skip
    assert [f.role for f in ok.market.feeds] == ["primary", "backup"]
    with pytest.raises(ConfigError, match=r"market.feeds\[1\] \(b\).primary: no primary feed"):
        config.from_dict(
            {"market": {"feeds": FEEDS + [{"name": "b", "endpoint": "x", "role": "backup",
                                            "primary": "z"}]}}
        )  # fmt: skip
    with pytest.raises(ConfigError, match="role: must be primary or backup"):
        config.from_dict({"market": {"feeds": [{"name": "a", "role": "spare"}]}})


def test_market_rules_stats_and_sessions_are_validated_at_load():
    with pytest.raises(ConfigError, match=r"market.rules \(x\): .*kind 'moon'"):
        config.from_dict({"market": {"rules": [{"id": "x", "kind": "moon"}]}})
    with pytest.raises(ConfigError, match="unknown session 'lunch'"):
        config.from_dict({"market": {"rules": [{"id": "x", "sessions": ["lunch"]}]}})
    with pytest.raises(ConfigError, match="market.stats: window 45s"):
        config.from_dict({"market": {"stats": {"vol_windows_s": [45, 300, 1800]}}})
    with pytest.raises(ConfigError, match="session_clock_start"):
        config.from_dict({"market": {"session_clock_start": "next Wednesday"}})
    assert {r.kind for r in config.default().market.rules} >= {"jump", "stale", "feed_silent"}


def test_exposure_limits_are_validated_at_load():
    with pytest.raises(ConfigError, match=r"books.limits \(l\).metric"):
        config.from_dict({"books": {"limits": [{"id": "l", "metric": "happiness"}]}})
    with pytest.raises(ConfigError, match="rearm"):
        config.from_dict({"books": {"limits": [{"id": "l", "threshold": 100, "rearm": 120}]}})
