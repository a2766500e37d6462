"""How the account path scales: 10k / 50k / 100k / 200k accounts × 10 positions over 400
contracts at the same tick load (100,000 ticks/s through ZeroMQ, two shards)."""

from __future__ import annotations

import os
from typing import Any

from benchmarks.common import run_loop

NAME = "accounts-scaling"
DESCRIPTION = "10k, 50k, 100k and 200k accounts × 10 positions, 400 contracts, 100k ticks/s"
SIZES = (10_000, 50_000, 100_000, 200_000)


def run(quick: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for n in SIZES[:2] if quick else SIZES:
        out[f"{n // 1000}k"] = run_loop(
            accounts=n, contracts=400, positions=10, rate=100_000, duration_s=5 if quick else 15
        ) | {"load_1m_during": round(os.getloadavg()[0], 2)}
    return out
