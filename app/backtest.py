"""`fengkong backtest`: files in, `alerts.jsonl` and `summary.json` out.

The replay itself is rules.engine.backtest (pure, the live code); this module reads the inputs
and writes the outputs:

- ticks: recorded CTP-style CSVs, read into columns by `gateways.market.tick_files` (its
  docstring has the formats and the parse cache).
- accounts.csv `account_id,group_path,pre_balance`; positions.csv
  `account_id,contract,direction,volume,cost_price` (direction long / short). Errors name the
  file and line.
- contract specs from the built-in table, overridable with `specs` (CTP instrument table).

Outputs are deterministic — data time only, sorted — so the same data and rules give identical
files; how long it took is returned (and printed by the CLI), never written.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from app.book_inputs import BacktestInputError, build_book  # noqa: F401 (the backtest's inputs)
from gateways.market.tick_files import FIELDS, load_ticks  # noqa: F401 - FIELDS: the tick columns
from infra import rulesets
from infra.specs import load_contract_table
from rules.engine.backtest import Backtest, Ticks
from rules.sessions import SessionCalendar


def run(
    ticks: Sequence[str | Path], accounts: str | Path, positions: str | Path,
    rules: Sequence[str | Path], out: str | Path, specs: str | None = None,
    step_ms: int = 500, screen: bool = True, cache: str | None = None,
    trading_day: str | None = None, parallel: bool = True, evaluate: bool = False,
    compare_rules: Sequence[str | Path] = (),
) -> dict[str, Any]:  # fmt: skip
    """Replay, write alerts.jsonl and summary.json into `out`; returns the summary plus
    timings (`perf`, not written). `evaluate` (or `compare_rules`, a second rule set replayed
    on the same files) adds `evaluation`: the rule sets judged against the crossings of 100%
    (app.backtest_eval)."""
    t0 = time.perf_counter()
    ruleset = rulesets.load(list(rules))
    table = load_contract_table([specs] if specs else [])
    book = build_book(Path(accounts), Path(positions), table)
    t1 = time.perf_counter()
    tick_cols, info = load_ticks(ticks, cache, trading_day)
    unticked = sorted(set(book.contracts.index) - set(tick_cols.instruments))
    if unticked:
        raise BacktestInputError(
            f"{positions}: positions in {len(unticked)} contract(s) with no tick in the tick files:"
            f" {', '.join(unticked[:8])}{' …' if len(unticked) > 8 else ''} — add their ticks or "
            "leave those positions out"
        )
    t2 = time.perf_counter()
    engine = Backtest(book, ruleset, table, SessionCalendar.from_table(table),
                      step_s=step_ms / 1000, screen=screen)  # fmt: skip
    result = engine.run(tick_cols, market_in_parallel(engine, tick_cols) if parallel else None)
    t3 = time.perf_counter()
    summary = summarize(result.alerts, ruleset, {**info, **{k: v for k, v in result.stats.items() if k != "seconds"}},
                        step_ms, screen)  # fmt: skip
    if evaluate or compare_rules:
        summary["evaluation"] = _evaluate(result.alerts, rules, compare_rules, tick_cols,
                                          accounts, positions, specs, step_ms, screen)  # fmt: skip
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "alerts.jsonl", "w", encoding="utf-8") as fh:
        for rec in result.alerts:
            fh.write(json.dumps(rec, sort_keys=True, ensure_ascii=False) + "\n")
    (out_dir / "summary.json").write_text(
        json.dumps(summary, sort_keys=True, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    t4 = time.perf_counter()
    n = len(tick_cols)
    perf = {
        "load_inputs_s": round(t1 - t0, 3), "parse_ticks_s": round(t2 - t1, 3),
        "replay_s": round(t3 - t2, 3), "write_s": round(t4 - t3, 3),
        "replay_ticks_per_s": round(n / (t3 - t2)) if t3 > t2 else None,
        "end_to_end_ticks_per_s": round(n / (t4 - t0)) if t4 > t0 else None,
        "stages_s": {k: round(v, 3) for k, v in result.stats["seconds"].items()},
    }  # fmt: skip
    return {**summary, "perf": perf}


def _evaluate(
    alerts: list[dict[str, Any]], rules: Sequence[str | Path], compare_rules: Sequence[str | Path],
    ticks: Ticks, accounts: str | Path, positions: str | Path, specs: str | None, step_ms: int,
    screen: bool,
) -> dict[str, Any]:  # fmt: skip
    from app import backtest_eval as ev

    crossings, days = ev.line_crossings(ticks, accounts, positions, specs, step_ms, screen)
    table = load_contract_table([specs] if specs else [])
    book = build_book(Path(accounts), Path(positions), table)
    keys = set(book.account_ids)
    runs = [(" ".join(Path(r).name for r in rules), alerts)]
    if compare_rules:
        other = Backtest(book, rulesets.load(list(compare_rules)), table,
                         SessionCalendar.from_table(table), step_s=step_ms / 1000, screen=screen)  # fmt: skip
        runs.append((" ".join(Path(r).name for r in compare_rules), other.run(ticks).alerts))
    return ev.evaluation_summary(
        [ev.evaluation_of(name, a, crossings, keys, days) for name, a in runs]
    )


_JOB: tuple[Backtest, Ticks] | None = None


def _market_job() -> list[Any]:
    assert _JOB is not None
    return _JOB[0].market_events(_JOB[1])


class _Deferred:
    """Market events computed by a forked process while this one replays the accounts (the
    two are independent until composite matching); a list-like the engine takes as is."""

    def __init__(self, result: Any, pool: Any) -> None:
        self.result, self.pool = result, pool


def market_in_parallel(engine: Backtest, ticks: Ticks) -> Any:
    """Start the market rules on the second core (fork: the ticks are shared, not copied);
    None (compute in-process) when there are none or fork is unavailable."""
    global _JOB
    if not engine.market_specs or not len(ticks) or (os.cpu_count() or 1) < 2:
        return None
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        return None  # never fork a process that runs Ray's threads
    try:
        ctx = multiprocessing.get_context("fork")
    except ValueError:
        return None
    _JOB = (engine, ticks)
    pool = ctx.Pool(1)
    return _Deferred(pool.apply_async(_market_job), pool)


def summarize(alerts: list[dict[str, Any]], ruleset: Any, inputs: dict[str, Any], step_ms: int,
              screen: bool) -> dict[str, Any]:  # fmt: skip
    by_rule: dict[str, dict[str, Any]] = {}
    by_severity: Counter = Counter()
    by_hour: Counter = Counter()
    for a in alerts:
        r = by_rule.setdefault(
            a["rule"], {"alerts": 0, "suppressed": 0, "severity": a["severity"], "keys": set()}
        )
        r["alerts"] += 1
        r["suppressed"] += int("suppressed" in a)
        r["keys"].add(a["key"])
        by_severity[a["severity"]] += 1
        by_hour[a["time"][:13] + ":00"] += 1
    for r in by_rule.values():
        r["keys"] = len(r["keys"])
    return {
        "ruleset": {
            "version": ruleset.version,
            "source": ruleset.source,
            "rules": len(ruleset.rules),
        },
        "inputs": inputs,
        "step_ms": step_ms,
        "screen": screen,
        "alerts": len(alerts),
        "suppressed": sum(1 for a in alerts if "suppressed" in a),
        "first": alerts[0]["time"] if alerts else None,
        "last": alerts[-1]["time"] if alerts else None,
        "by_rule": dict(sorted(by_rule.items())),
        "by_severity": dict(sorted(by_severity.items())),
        "by_hour": dict(sorted(by_hour.items())),
    }
