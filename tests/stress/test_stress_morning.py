"""The [stress] config table and the morning schedule (the run itself: tests/integration)."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

import app.stress_command  # noqa: F401 (registers the [stress] validator, as the CLI does)
from app.stress_morning import MorningStress, morning_loop, next_run, parse_stress_table
from infra import config

GOOD = {"morning": "08:45", "scenarios": ["black-open-7"], "target": 0.75}


def test_stress_table_is_validated_when_the_config_loads() -> None:
    cfg = config.from_dict({"stress": GOOD}, source="x.toml")
    s = cfg.edges["stress"]
    assert isinstance(s, MorningStress) and s.morning == dt.time(8, 45) and s.target == 0.75
    with pytest.raises(config.ConfigError, match=r"x.toml: \[stress\] target must be"):
        config.from_dict({"stress": {**GOOD, "target": 1.5}}, source="x.toml")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"morning": "8h45"}, "morning must be a time of day"),
        ({"scenarios": ["nope"]}, "unknown 'nope'"),
        ({"scenarios": []}, "non-empty list"),
        ({"timezone": "Mars/Base"}, "not a known time zone"),
        ({"extra": 1}, "unknown key 'extra'"),
    ],
)
def test_stress_table_errors_name_the_key(change, message) -> None:
    with pytest.raises(ValueError, match=message):
        parse_stress_table({**GOOD, **change})


def test_next_run_is_today_if_ahead_else_tomorrow() -> None:
    s = parse_stress_table(GOOD)
    zone = dt.timezone(dt.timedelta(hours=8))
    early = dt.datetime(2026, 12, 3, 7, 0, tzinfo=zone).timestamp()
    late = dt.datetime(2026, 12, 3, 9, 0, tzinfo=zone).timestamp()
    assert next_run(s, early) == dt.datetime(2026, 12, 3, 8, 45, tzinfo=zone).timestamp()
    assert next_run(s, late) == dt.datetime(2026, 12, 4, 8, 45, tzinfo=zone).timestamp()


def test_morning_loop_runs_at_the_time_and_stops() -> None:
    s = parse_stress_table(GOOD)
    zone = dt.timezone(dt.timedelta(hours=8))
    now = [dt.datetime(2026, 12, 3, 8, 44, 59, 950_000, tzinfo=zone).timestamp()]
    stop = threading.Event()
    runs: list[float] = []

    def run() -> None:
        runs.append(now[0])
        stop.set()  # one morning is enough for the test

    def clock() -> float:
        return now[0]

    morning_loop(run, s, stop, clock)  # waits the 50 ms to 08:45, runs, sees stop
    assert len(runs) == 1
