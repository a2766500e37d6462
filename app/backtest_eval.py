"""`fengkong backtest --evaluate [--compare RULES_B]`: how good a rule set is on this history.

The crossings of 100% come from the backtest's own risk-degree path: the same replay (same
steps, settlements, screen) with one rule, risk_degree ≥ 1.0 re-armed below 0.95, whose alerts
are the crossings — so the path the rule set was judged on is exactly the path it saw, with no
second marking code. rules.rule_evaluation then gives alerts per account per day, the lead time
of the first alert before each crossing, the missed crossings and the precision; with
`--compare` a second rule set is replayed on the same files and judged against the same
crossings.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from infra import rulesets
from infra.specs import load_contract_table
from rules.engine.backtest import Backtest
from rules.rule_evaluation import Crossing, Evaluation, compare, evaluate_rule_set
from rules.sessions import SessionCalendar

LINE_RULE = "evaluation.line_100"
LINE = {"id": LINE_RULE, "metric": "risk_degree", "op": ">=", "threshold": 1.0, "rearm": 0.95,
        "severity": "info", "description": "risk degree at the line (the crossings judged)"}  # fmt: skip
MISSED_LISTED = 50  # the first missed crossings written out (all are counted)


def line_crossings(
    ticks: Any, accounts: str | Path, positions: str | Path, specs: str | None, step_ms: int,
    screen: bool,
) -> tuple[list[Crossing], int]:  # fmt: skip
    """Crossings of 100% on the replay's risk-degree path, and the replay's trading days."""
    from app.book_inputs import build_book

    table = load_contract_table([specs] if specs else [])
    book = build_book(Path(accounts), Path(positions), table)
    line = rulesets.parse({"rules": [LINE]}, "<evaluation>")
    engine = Backtest(book, line, table, SessionCalendar.from_table(table),
                      step_s=step_ms / 1000, screen=screen)  # fmt: skip
    result = engine.run(ticks)
    crossings = [Crossing(str(a["key"]), float(a["ts"])) for a in result.alerts
                 if a["rule"] == LINE_RULE]  # fmt: skip
    return crossings, len(result.stats.get("settlements", ())) + 1


def evaluation_of(
    name: str, alerts: Sequence[dict[str, Any]], crossings: list[Crossing], accounts: set[str],
    days: int,
) -> Evaluation:  # fmt: skip
    """One rule set judged: only its alerts on accounts (market and node alerts have no line)."""
    mine = [a for a in alerts if str(a["key"]) in accounts]
    return evaluate_rule_set(name, mine, crossings, len(accounts), float(days))


def evaluation_summary(evaluations: list[Evaluation]) -> dict[str, Any]:
    """What summary.json carries under `evaluation`: one row per rule set, the missed listed."""
    rows = compare(evaluations)
    for row, e in zip(rows, evaluations, strict=True):
        row["missed_crossings"] = [{"key": c.key, "ts": round(c.ts, 3)}
                                   for c in e.missed[:MISSED_LISTED]]  # fmt: skip
    return {"line": 1.0, "rule_sets": rows}


def print_evaluation(evaluation: dict[str, Any]) -> None:
    print("evaluation against crossings of 100%:")
    for r in evaluation["rule_sets"]:
        lead = "—" if r["lead_s_median"] is None else f"{r['lead_s_median']:.0f} s"
        print(f"  {r['rule_set']:<28} {r['alerts']:>6} alerts  "
              f"{r['alerts_per_account_day']:.3f}/account/day  crossings {r['crossings']}  "
              f"caught {r['caught']}  missed {r['missed']}  median lead {lead}")  # fmt: skip
