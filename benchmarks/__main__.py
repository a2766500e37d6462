"""`python -m benchmarks [SCENARIO ...] [--quick]` — run scenarios, print one JSON line each.

Each scenario is a module in this package with `NAME`, `DESCRIPTION` and `run(quick: bool) -> dict`,
and optionally `TARGETS = {figure: ("<" | ">", value)}`: each target is printed next to its figure
with `ok` or `short`. Machines differ by several times, so every run first prints a calibration
figure (a fixed numpy and msgpack micro-benchmark, `benchmarks.calibration`) and every scenario
reports the load average before and after it; compare figures as ratios within one run.
The last line printed is one JSON object with every scenario's figures keyed by name (a single
scenario prints just its own object), so scripts can read the result from the last line.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import sys
import time
from pathlib import Path

import benchmarks
from benchmarks import calibration


def scenarios() -> dict[str, object]:
    found = {}
    for info in pkgutil.iter_modules([str(Path(benchmarks.__file__).parent)]):
        if info.name.startswith("_") or info.name in ("common",):
            continue
        module = importlib.import_module(f"benchmarks.{info.name}")
        if hasattr(module, "NAME") and hasattr(module, "run"):
            found[module.NAME] = module
    return dict(sorted(found.items()))


def main(argv: list[str] | None = None) -> int:
    available = scenarios()
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument(
        "names", nargs="*", help=f"scenarios (default: all): {', '.join(available)}"
    )
    parser.add_argument("--quick", action="store_true", help="short runs, for a smoke check")
    args = parser.parse_args(argv)
    names = args.names or list(available)
    unknown = [n for n in names if n not in available]
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}; known: {list(available)}")
    results = {}
    cal = calibration.measure()
    print(json.dumps({"calibration": cal}), flush=True)
    for name in names:
        started = time.time()
        print(f"== {name}: {available[name].DESCRIPTION}", file=sys.stderr, flush=True)
        load_before = round(os.getloadavg()[0], 2)
        figures = available[name].run(quick=args.quick)
        figures["wall_s"] = round(time.time() - started, 1)
        figures["load_1m_before_after"] = [load_before, round(os.getloadavg()[0], 2)]
        figures["calibration_ms"] = cal["total_ms"]
        targets = calibration.judge(figures, getattr(available[name], "TARGETS", {}))
        if targets:
            figures["targets"] = targets
            for line in calibration.target_lines(targets):
                print(f"   {name}: {line}", file=sys.stderr, flush=True)
        results[name] = figures
        print(json.dumps({"scenario": name, **figures}), flush=True)
    print(json.dumps(results[names[0]] if len(names) == 1 else results), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
