"""How the account path scales: 10k / 25k / 50k accounts at the same tick load."""

from __future__ import annotations

from typing import Any

from benchmarks.common import run_loop

NAME = "accounts-scaling"
DESCRIPTION = "10k, 25k and 50k accounts × 10 positions, 200 contracts, 100k ticks/s, 15 s each"


def run(quick: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for n in (10_000, 25_000, 50_000):
        out[f"{n // 1000}k"] = run_loop(
            accounts=n, contracts=200, positions=10, rate=100_000, duration_s=5 if quick else 15
        )
    return out
