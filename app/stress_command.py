"""`fengkong stress`: the morning question — which accounts go past the line if the market moves.

Offline on an accounts/positions file (`--accounts`, `--positions`, the backtest's formats) with
prices from `--prices` (CSV: instrument, last[, pre_settlement, upper_limit, lower_limit]) or,
without it, at each contract's average cost in the positions file (said in the output). On a
running system (no `--positions`) every shard evaluates the scenario on a copy of its live book
(`AccountShard.stress`, one Ray call per shard) and the results are merged, so the table, JSON and
HTML are the offline ones.
`fengkong stress history --day D --bars DIR` turns a historical day into a scenario.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from app.stress_live import live_stress  # noqa: F401 (re-exported)
from app.stress_morning import morning_loop, parse_stress_table, register, run_morning
from infra.reports.stress import json_report, text_report, write_reports
from infra.specs import load_contract_table
from infra.stress_io import historical_scenario, load_scenarios, return_covariance, scenario_record
from rules.book import AccountBook
from rules.stress import (
    ScenarioError,
    evaluate,
    reverse_stress,
)
from rules.stress.correlated import correlated

register()  # [stress] is validated whenever a config is loaded after the CLI is built


class StressInputError(ValueError):
    """Bad stress input; the message names the file, line and why."""


def add_parser(sub: Any, common: Any = None, load_config: Any = None) -> None:
    """`stress`; with `common` (cli.py's --config/--address) it can reach a running system."""
    p = sub.add_parser("stress", help="stress scenarios on the book (what if the market moves)")
    if common is not None:
        common(p)
    p.add_argument("--prefix", default="fengkong.", help="actor name prefix of the live system")
    p.add_argument("what", nargs="?", choices=("run", "list", "history", "morning"), default="run")
    p.add_argument("--scenario", help="a scenario name from the library (see `stress list`)")
    p.add_argument("--scenarios", action="append", default=[], help="extra scenario TOML files")
    p.add_argument("--accounts", help="accounts CSV (offline)")
    p.add_argument("--positions", help="positions CSV (offline)")
    p.add_argument("--prices", help="prices CSV: instrument,last[,pre_settlement,...]")
    p.add_argument(
        "--correlated",
        metavar="BARS_DIR",
        help="move the other products by their historical covariance (bar files)",
    )
    p.add_argument("--target", type=float, default=0.8, help="risk degree a margin call restores")
    p.add_argument("--top", type=int, default=20)
    p.add_argument("--reverse", action="store_true", help="also the smallest move that crosses")
    p.add_argument("--out", help="write stress-NAME.json and .html here")
    p.add_argument("--json", action="store_true", help="JSON on stdout")
    p.add_argument("--day", help="history: the trading day (YYYY-MM-DD)")
    p.add_argument("--bars", help="history: folder of bar files (prints a [[scenario]] record)")
    p.add_argument("--once", action="store_true", help="morning: one run now, then exit")
    p.set_defaults(func=run, load_config=load_config)


def run(args: argparse.Namespace) -> int:
    try:
        library = load_scenarios(args.scenarios)
        if args.what == "list":
            for name, sc in library.items():
                print(f"{name:24s} {sc.description}")
            return 0
        if args.what == "history":
            return _history(args)
        if args.what == "morning":
            return _morning(args)
        if not args.scenario:
            raise StressInputError("--scenario NAME is required (see `fengkong stress list`)")
        if args.scenario not in library:
            raise StressInputError(
                f"unknown scenario {args.scenario!r}; known: {', '.join(library)}"
            )
        scenario = library[args.scenario]
        if args.correlated:
            products, cov = return_covariance(args.correlated)
            scenario = correlated(scenario, products, cov)
        book = None
        if args.positions:
            book, note = offline_book(args.accounts, args.positions, args.prices)
            result = evaluate(book, scenario, target=args.target)
        else:
            if args.accounts or args.prices:
                raise StressInputError("--accounts/--prices need --positions (offline stress)")
            result = live_stress(_live_shards(args), scenario, args.target)
            note = f"live book of {len(result.account_ids)} accounts"
    except (ScenarioError, StressInputError, ValueError, ConnectionError) as exc:
        print(f"fengkong stress: {exc}")
        return 2
    if args.json:
        print(json.dumps(json_report(result, args.top), ensure_ascii=False))
    else:
        if note:
            print(note)
        print(text_report(result, args.top, at=time.time()))
    if args.reverse and book is None and not args.json:
        print("\n(reverse stress runs offline only: give --accounts and --positions)")
    elif args.reverse and not args.json:
        rev = reverse_stress(book)
        print("\nsmallest crossing move (reverse stress):")
        for r in result.top(args.top):
            i = rev.account_ids.index(r["account_id"])
            what, x = rev.nearest(i)
            print(f"  {r['account_id']:12s} {what:6s} {'—' if not np.isfinite(x) else f'{x:.2%}'}")
    if args.out:
        j, h = write_reports(result, args.out, args.top, at=time.time())
        if not args.json:
            print(f"\nwrote {j} and {h}")
    return 0


def _live_shards(args: argparse.Namespace) -> list[Any]:
    from app.handles import shards as _shards

    if not hasattr(args, "config"):
        raise StressInputError("give --accounts and --positions (no running system configured)")
    try:
        return _shards(args)
    except ValueError:
        raise StressInputError(
            f"no running system with actor prefix {args.prefix!r} (its shards are not found); "
            "start one with `fengkong run`, or stress a file with --accounts/--positions"
        ) from None


def _morning(args: argparse.Namespace) -> int:
    """`stress morning`: the config's [stress] run on the running system, daily or `--once`."""
    import threading

    import ray

    from actors.common import actor_name
    from app.handles import executor as _executor

    if args.load_config is None:
        raise StressInputError("stress morning needs a running system's --config")
    table = args.load_config(args).edges.get("stress")
    if table is None:
        raise StressInputError("stress morning: the config has no [stress] table")
    settings = parse_stress_table(table)
    shards = _live_shards(args)
    executor = _executor(args)
    notifier = ray.get_actor(actor_name(args.prefix, "Notifier"))

    def once() -> dict[str, Any]:
        out = run_morning(shards, notifier, executor, settings)
        print(json.dumps(out, ensure_ascii=False, default=str))
        return out

    if args.once:
        once()
        return 0
    stop = threading.Event()
    print(f"fengkong stress morning: daily at {settings.morning} {settings.timezone}")
    try:
        morning_loop(once, settings, stop)
    except KeyboardInterrupt:
        stop.set()
    return 0


def _history(args: argparse.Namespace) -> int:
    if not (args.day and args.bars):
        raise StressInputError("stress history needs --day YYYY-MM-DD and --bars DIR")
    try:
        day = dt.date.fromisoformat(args.day)
    except ValueError:
        raise StressInputError(f"--day {args.day!r} is not a date (YYYY-MM-DD)") from None
    scenario = historical_scenario(args.bars, day, table=load_contract_table())
    print(scenario_record(scenario), end="")
    return 0


def offline_book(
    accounts: str | None, positions: str, prices: str | None
) -> tuple[AccountBook, str]:
    """The book of an accounts/positions file, priced from `prices` or at average cost."""
    from app.book_inputs import build_book

    if not accounts:
        raise StressInputError("--positions needs --accounts too")
    book = build_book(Path(accounts), Path(positions), load_contract_table())
    c = book.contracts
    if prices:
        names, columns = _read_prices(Path(prices))
    else:
        names = list(c.names)
        cost = _average_cost(book)
        columns = {"last": cost, "pre_settlement": cost}
    book.set_prices(names, columns["last"], upper_limit=columns.get("upper_limit"),
                    lower_limit=columns.get("lower_limit"),
                    pre_settlement=columns.get("pre_settlement", columns["last"]))  # fmt: skip
    book.mark()
    note = "" if prices else "note: no --prices given; contracts priced at their average cost"
    return book, note


def _average_cost(book: AccountBook) -> np.ndarray:
    n = book.n_positions
    contract = book.pos_contract[:n]
    vol = book.pos["volume"][:n]
    nc = len(book.contracts)
    value = np.bincount(contract, weights=vol * book.pos["open_price"][:n], minlength=nc)
    lots = np.bincount(contract, weights=vol, minlength=nc)
    return np.divide(value, lots, out=np.full(nc, np.nan), where=lots > 0)


def _read_prices(path: Path) -> tuple[list[str], dict[str, np.ndarray]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
    except FileNotFoundError:
        raise StressInputError(f"{path}: no such prices file") from None
    if not rows or "instrument" not in rows[0] or "last" not in rows[0]:
        raise StressInputError(f"{path}:1: needs columns instrument,last")
    names: list[str] = []
    cols: dict[str, list[float]] = {}
    keys = [k for k in ("last", "pre_settlement", "upper_limit", "lower_limit") if k in rows[0]]
    for line, row in enumerate(rows, start=2):
        names.append(row["instrument"].strip())
        for k in keys:
            try:
                value = float(row[k]) if row[k].strip() else float("nan")
            except ValueError:
                raise StressInputError(f"{path}:{line}: {k} {row[k]!r} is not a number") from None
            cols.setdefault(k, []).append(value)
    return names, {k: np.asarray(v) for k, v in cols.items()}
