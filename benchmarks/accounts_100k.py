"""Issue 17's scenario: 100,000 accounts × 10 positions over 400 contracts, 100,000 ticks/s
through ZeroMQ on the 2-core machine (two shards): p99 tick→alert, re-marks per account per
second, account state. Run three times for the median p99 (`make bench BENCH=accounts-100k`
prints each run's figure and load)."""

from __future__ import annotations

import os
from typing import Any

from benchmarks.common import run_loop

NAME = "accounts-100k"
TARGETS = {
    "tick_to_alert_p99_ms": ("<", 50.0),
    "remark_hz": (">", 10.0),
    "account_state_mb": ("<", 1000.0),
}  # issue 17
DESCRIPTION = "100,000 accounts × 10 positions over 400 contracts, 100k ticks/s through ZeroMQ"


def run(quick: bool = False) -> dict[str, Any]:
    return run_loop(
        accounts=100_000, contracts=400, positions=10, rate=100_000,
        duration_s=10 if quick else 30,
    ) | {"load_1m_during": round(os.getloadavg()[0], 2)}  # fmt: skip
