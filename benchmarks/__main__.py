"""`python -m benchmarks [SCENARIO ...] [--quick]` — run scenarios, print one JSON line each.

Each scenario is a module in this package with `NAME`, `DESCRIPTION` and `run(quick: bool) -> dict`.
The last line printed is one JSON object with every scenario's figures keyed by name (a single
scenario prints just its own object), so scripts can read the result from the last line.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
import time
from pathlib import Path

import benchmarks


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
    for name in names:
        started = time.time()
        print(f"== {name}: {available[name].DESCRIPTION}", file=sys.stderr, flush=True)
        figures = available[name].run(quick=args.quick)
        figures["wall_s"] = round(time.time() - started, 1)
        results[name] = figures
        print(json.dumps({"scenario": name, **figures}), flush=True)
    print(json.dumps(results[names[0]] if len(names) == 1 else results), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
