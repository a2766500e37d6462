"""One clock convention (issue 19): every time the CLI and the reports print is Beijing time with
its zone label; the journal keeps UTC epochs."""

from __future__ import annotations

import datetime as dt

from app import cli, rules_cli
from infra.reports import commands, html, svg

BJ = dt.timezone(dt.timedelta(hours=8))
TS = dt.datetime(2026, 12, 3, 9, 31, 5, 250_000, tzinfo=BJ).timestamp()


def test_cli_and_report_times_are_beijing_time_labelled():
    assert cli._fmt_ts(TS) == "2026-12-03 09:31:05.250 北京时间"
    assert commands._fmt(TS) == "2026-12-03 09:31:05.250 北京时间"
    assert html._ts(TS) == "2026-12-03 09:31:05.250 北京时间"
    assert rules_cli._fmt(TS) == "2026-12-03 09:31:05 北京时间"
    chart = svg.line_chart({"A1": [(TS, 0.8), (TS + 60, 0.7)]}, title="risk degree")
    assert "09:31:05" in chart and "北京时间" in chart
