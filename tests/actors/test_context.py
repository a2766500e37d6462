"""The one Context: built once from the config, its calendar carries the holiday file, and the
shard's session-scoped rules see that calendar (they used to rebuild one without holidays)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import ray

from actors.account_shard import AccountShard, AccountShardSettings
from actors.context import Context
from infra import config
from tests.zmq_util import free_tcp_endpoint

HOLIDAYS = Path(__file__).resolve().parents[2] / "examples" / "holidays.json"
BEIJING = ZoneInfo("Asia/Shanghai")
HOLIDAY_10AM = datetime(
    2025, 1, 28, 10, 0, tzinfo=BEIJING
).timestamp()  # a Tuesday, Spring Festival
WORKDAY_10AM = datetime(2025, 1, 21, 10, 0, tzinfo=BEIJING).timestamp()  # the Tuesday before


def holiday_config() -> config.Config:
    return config.from_dict({"market": {"holidays_file": str(HOLIDAYS)}})


def test_context_from_config_knows_the_holidays() -> None:
    context = Context.build(holiday_config())
    assert not context.calendar.is_trading_day(datetime(2025, 1, 28).date())
    assert context.calendar.is_trading_day(datetime(2025, 1, 21).date())
    assert "rb" in context.contracts
    assert Context.of().calendar.is_trading_day(datetime(2025, 1, 28).date())  # no holiday file


def test_shard_calendar_knows_a_holiday(ray_local) -> None:
    context = Context.build(holiday_config())
    settings = AccountShardSettings(0, 1, free_tcp_endpoint(), free_tcp_endpoint())
    shard = AccountShard.remote(settings, context=context, rules=[])
    try:
        assert "day" in ray.get(shard.session_labels.remote(WORKDAY_10AM))
        assert ray.get(shard.session_labels.remote(HOLIDAY_10AM)) == []
    finally:
        ray.kill(shard)
