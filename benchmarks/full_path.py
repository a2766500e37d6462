"""Issue 3's figure: ticks/s through the whole path and tick→alert latency with 10,000 accounts."""

from __future__ import annotations

from typing import Any

from benchmarks.common import run_loop

NAME = "full-path"
TARGETS = {"tick_to_alert_p99_ms": ("<", 50.0)}
DESCRIPTION = "10,000 accounts × 3 positions over 60 contracts, 20k ticks/s, oscillating shocks"


def run(quick: bool = False) -> dict[str, Any]:
    return run_loop(
        accounts=10_000, contracts=60, positions=3, rate=20_000, duration_s=8 if quick else 30
    )
