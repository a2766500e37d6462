"""Stress inputs from files: the scenario library, price history from bar files.

The library is `infra/data/scenarios.toml` plus any files a user names; a historical day becomes a
scenario from bar files (wtpy/MultiCharts-style CSVs, plain or gzipped, one product's main contract
per file named like `DCE.i.HOT_m5.csv.gz` or `CFFEX.IF.HOT_d.csv`): per product, the move from the
previous trading day's close (its settlement where the file has one) to the day's close. The same
files give the daily log-return covariance for correlated scenarios.

Night bars carry their calendar date; they belong to the next trading day, so a trading day's close
is its last bar at or before 15:15, and the previous close is the last such bar on an earlier date.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import math
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from rules.contracts import ContractTable
from rules.stress.correlated import log_return_covariance
from rules.stress.scenarios import Scenario, ScenarioError, product_moves_from_history
from rules.stress.scenarios import scenarios_from_records as _from_records

LIBRARY = Path(__file__).parent / "data" / "scenarios.toml"
_NAME = re.compile(r"^(?:[A-Z]+)\.([A-Za-z]+)\.")
DAY_CLOSE = "15:15"


def load_scenarios(paths: Sequence[str | Path] = ()) -> dict[str, Scenario]:
    """The default library, then each file in turn (a later file may redefine a name)."""
    out: dict[str, Scenario] = {}
    for path in (LIBRARY, *map(Path, paths)):
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ScenarioError(f"{path}: no such scenario file") from None
        except tomllib.TOMLDecodeError as exc:
            raise ScenarioError(f"{path}: not valid TOML: {exc}") from None
        records = data.get("scenario", [])
        if not isinstance(records, list):
            raise ScenarioError(f"{path}: [[scenario]] must be an array of tables")
        out.update(_from_records(records, str(path)))
    return out


def bar_files(folder: str | Path) -> dict[str, Path]:
    """Bar files of a folder by product code (as the file names spell it)."""
    out: dict[str, Path] = {}
    for path in sorted(Path(folder).glob("*.csv*")):
        m = _NAME.match(path.name)
        if m:
            out.setdefault(m.group(1), path)
    return out


def daily_closes(path: str | Path, settlement: bool = False) -> dict[dt.date, float]:
    """Per trading day: the last day-session close, or with `settlement` the settlement price
    where the file has one (daily files) and the close where it has none."""
    raw = Path(path).read_bytes()
    text = (gzip.decompress(raw) if str(path).endswith(".gz") else raw).decode("utf-8-sig")
    reader = csv.reader(io.StringIO(text))
    header = [h.strip().strip("<>").lower() for h in next(reader)]
    col = {name: i for i, name in enumerate(header)}
    if "date" not in col or "close" not in col:
        raise ScenarioError(f"{path}:1: expected date and close columns, got {header}")
    price = col.get("settlement", col["close"]) if settlement else col["close"]
    out: dict[dt.date, float] = {}
    for line, row in enumerate(reader, start=2):
        if not row:
            continue
        try:
            day = _date(row[col["date"]])
            value = float(row[price])
        except (ValueError, IndexError) as exc:
            raise ScenarioError(f"{path}:{line}: {exc}") from None
        clock = row[col["time"]].strip() if "time" in col else "0"
        if ":" in clock and clock[:5].rjust(5, "0") > DAY_CLOSE:
            continue  # a night bar: the next trading day's
        if math.isfinite(value):
            out[day] = value
    return out


def _date(text: str) -> dt.date:
    head = text.strip().split()[0].replace("-", "/")
    year, month, day = (int(x) for x in head.split("/"))
    return dt.date(year, month, day)


def historical_scenario(
    folder: str | Path, day: dt.date, name: str | None = None, table: ContractTable | None = None
) -> Scenario:
    """The day's move of every product with bars in `folder`, as a scenario: from the previous
    day's settlement (its close where the file has none) to the day's close. With a contract
    table, product codes are spelt as the table spells them ("CU" in a file name is "cu")."""
    closes: dict[str, tuple[float, float]] = {}
    for product, path in bar_files(folder).items():
        close, settle = daily_closes(path), daily_closes(path, settlement=True)
        earlier = [d for d in settle if d < day]
        if day not in close or not earlier:
            continue
        if table is not None and product in table:
            product = table.spec(product).product
        closes[product] = (settle[max(earlier)], close[day])
    label = name or f"hist-{day.isoformat()}"
    return product_moves_from_history(closes, label, f"the moves of {day.isoformat()} ({folder})")


def return_covariance(
    folder: str | Path, start: dt.date | None = None, end: dt.date | None = None
) -> tuple[list[str], np.ndarray]:
    """Products and the covariance of their daily log returns over [start, end]."""
    series = {p: daily_closes(f) for p, f in bar_files(folder).items()}
    days = sorted({d for s in series.values() for d in s
                   if (start is None or d >= start) and (end is None or d <= end)})  # fmt: skip
    products = sorted(series)
    prices = np.full((len(days), len(products)), np.nan)
    row = {d: i for i, d in enumerate(days)}
    for j, p in enumerate(products):
        for d, v in series[p].items():
            if d in row and v > 0:
                prices[row[d], j] = v
    returns = np.diff(np.log(prices), axis=0)
    return products, log_return_covariance(returns)


def scenario_record(scenario: Scenario) -> str:
    """A scenario as a TOML [[scenario]] record (for `fengkong stress history --print`)."""
    lines = ["[[scenario]]", f'name = "{scenario.name}"', f'description = "{scenario.description}"']
    if scenario.cap_at_limit:
        lines.append("cap_at_limit = true")
    moves = ", ".join(_move_text(m) for m in scenario.moves)
    lines.append(f"moves = [{moves}]")
    return "\n".join(lines) + "\n"


def _move_text(move) -> str:  # noqa: ANN001 (a Move)
    names = move.names[0] if len(move.names) == 1 else list(move.names)
    scope = "all = true" if move.scope == "all" else f"{move.scope} = {_toml(names)}"
    size = f"pct = {move.pct:.4f}" if move.pct is not None else f"limits = {move.limits:g}"
    return "{ " + scope + ", " + size + " }"


def _toml(value: str | list[str]) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    return "[" + ", ".join(f'"{v}"' for v in value) + "]"


def products_with_history(folder: str | Path) -> Iterable[str]:
    return bar_files(folder).keys()
