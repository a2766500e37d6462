"""The calibration figure every `make bench` prints, and target judging.

A fixed amount of the work fengkong's hot paths do — numpy scatter/bincount over a million
positions and msgpack packing of a columnar tick frame — timed as the best of five, so a figure
from one machine can be read against another's: divide by the calibration ratio.
"""

from __future__ import annotations

import os
import time
from typing import Any

import msgpack
import numpy as np


def measure() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    accounts = rng.integers(0, 50_000, 1_000_000)
    values = rng.random(1_000_000)
    frame = {"cols": {k: rng.random(10_000).tobytes() for k in ("last", "bid", "ask", "volume")},
             "instruments": [f"rb{2600 + i}" for i in range(100)], "n": 10_000}  # fmt: skip

    def numpy_work() -> None:
        np.bincount(accounts, weights=values * 1.0001, minlength=50_000)
        np.argsort(values[:200_000])

    def msgpack_work() -> None:
        for _ in range(50):
            msgpack.unpackb(msgpack.packb(frame, use_bin_type=True), raw=False)

    out = {}
    for name, fn in (("numpy_ms", numpy_work), ("msgpack_ms", msgpack_work)):
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
        out[name] = round(best * 1000, 2)
    out["total_ms"] = round(out["numpy_ms"] + out["msgpack_ms"], 2)
    out["load_1m"] = round(os.getloadavg()[0], 2)
    out["cpus"] = os.cpu_count()
    return out


def judge(figures: dict[str, Any], targets: dict[str, tuple[str, float]]) -> dict[str, Any]:
    """{figure: {"value", "target", "verdict": "ok" | "short" | "missing"}}."""
    out = {}
    for key, (op, bound) in targets.items():
        value = figures.get(key)
        if not isinstance(value, int | float):
            out[key] = {"value": value, "target": f"{op} {bound:g}", "verdict": "missing"}
            continue
        good = value < bound if op == "<" else value > bound
        out[key] = {
            "value": value,
            "target": f"{op} {bound:g}",
            "verdict": "ok" if good else "short",
        }
    return out


def target_lines(targets: dict[str, Any]) -> list[str]:
    return [
        f"{k} = {v['value']} (target {v['target']}): {v['verdict']}" for k, v in targets.items()
    ]
