"""Issue 4's scenario: 50,000 accounts × 10 positions over 200 contracts, 100,000 ticks/s."""

from __future__ import annotations

from typing import Any

from benchmarks.common import run_loop

NAME = "accounts-50k"
TARGETS = {"tick_to_alert_p99_ms": ("<", 25.0), "remark_hz": (">", 10.0)}  # issue 17
DESCRIPTION = "50,000 accounts × 10 positions over 200 contracts, 100k ticks/s through ZeroMQ, 30 s"


def run(quick: bool = False) -> dict[str, Any]:
    return run_loop(
        accounts=50_000, contracts=200, positions=10, rate=100_000, duration_s=10 if quick else 30
    )
