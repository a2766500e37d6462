"""Stress scenarios as data: what moves, by how much, and whether the limit caps it.

A scenario is a list of moves. Each move names what it covers — every contract (`all`), an
`exchange`, a `commodity`, a `product` or one `contract` — and a size, either in percent of the
reference price (`pct = -7`) or in limit moves (`limits = -1`: one limit move down, i.e. to today's
lower limit; `limits = -2`: two consecutive limit days, compounded). Where several moves cover a
contract the most specific wins (contract > product > commodity > exchange > all), so "everything
−3%, ferrous −7%" reads as two moves. `cap_at_limit` clamps percent moves to today's price limits:
a market cannot open beyond them, but a risk manager may want the uncapped figure for a limit that
widens (the exchanges widen limits after consecutive limit days).

The reference price of a move is the previous settlement (a morning scenario: "opens 7% lower")
when known, else the last price. Pure: no I/O; the library of named scenarios is
`infra/data/scenarios.toml`, read by `infra.stress_io`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rules.contracts import ContractSpec, product_of

SCOPES = ("contract", "product", "commodity", "exchange", "all")  # most specific first
MOVE_KEYS = frozenset({*SCOPES, "pct", "limits"})
SCENARIO_KEYS = frozenset({"name", "description", "moves", "cap_at_limit", "reference"})
REFERENCES = ("pre_settlement", "last")


class ScenarioError(ValueError):
    """A scenario record that cannot be used; the message names the scenario and the key."""


@dataclass(frozen=True, slots=True)
class Move:
    """One move: the scope it covers (names within it, empty for `all`) and its size."""

    scope: str
    names: tuple[str, ...]
    pct: float | None = None  # percent of the reference price, -7 for 7% lower
    limits: float | None = None  # limit moves, -1 for one limit down

    def covers(self, instrument: str, spec: ContractSpec) -> bool:
        if self.scope == "all":
            return True
        value = {
            "contract": instrument,
            "product": spec.product,
            "commodity": spec.commodity,
            "exchange": spec.exchange,
        }[self.scope]
        return value in self.names


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    moves: tuple[Move, ...]
    cap_at_limit: bool = False
    reference: str = "pre_settlement"

    def move_for(self, instrument: str, spec: ContractSpec) -> Move | None:
        """The most specific move covering a contract, or None when the scenario leaves it."""
        for scope in SCOPES:
            for move in self.moves:
                if move.scope == scope and move.covers(instrument, spec):
                    return move
        return None


def scenario_from_record(record: Mapping[str, Any], where: str = "scenario") -> Scenario:
    """Validate one scenario record (a TOML table); errors name the scenario and the key."""
    if not isinstance(record, Mapping):
        raise ScenarioError(f"{where}: must be a table, got {type(record).__name__}")
    name = record.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ScenarioError(f"{where}: name must be a non-empty string, got {name!r}")
    where = f"{where} {name!r}"
    unknown = sorted(set(record) - SCENARIO_KEYS)
    if unknown:
        raise ScenarioError(f"{where}: unknown key {unknown[0]!r} (known: {sorted(SCENARIO_KEYS)})")
    raw_moves = record.get("moves")
    if not isinstance(raw_moves, list) or not raw_moves:
        raise ScenarioError(f"{where}: moves must be a non-empty list of tables")
    moves = tuple(_move(m, f"{where} moves[{i}]") for i, m in enumerate(raw_moves))
    cap = record.get("cap_at_limit", False)
    if not isinstance(cap, bool):
        raise ScenarioError(f"{where}: cap_at_limit must be true or false, got {cap!r}")
    reference = record.get("reference", "pre_settlement")
    if reference not in REFERENCES:
        raise ScenarioError(f"{where}: reference must be one of {REFERENCES}, got {reference!r}")
    description = record.get("description", "")
    if not isinstance(description, str):
        raise ScenarioError(f"{where}: description must be a string")
    return Scenario(name.strip(), description, moves, cap, reference)


def _move(raw: Any, where: str) -> Move:
    if not isinstance(raw, Mapping):
        raise ScenarioError(f"{where}: must be a table, got {type(raw).__name__}")
    unknown = sorted(set(raw) - MOVE_KEYS)
    if unknown:
        raise ScenarioError(f"{where}: unknown key {unknown[0]!r} (known: {sorted(MOVE_KEYS)})")
    scopes = [s for s in SCOPES if s in raw]
    if len(scopes) != 1:
        raise ScenarioError(f"{where}: name exactly one of {', '.join(SCOPES)}, got {scopes}")
    scope = scopes[0]
    if scope == "all":
        if raw["all"] is not True:
            raise ScenarioError(f"{where}: all must be true")
        names: tuple[str, ...] = ()
    else:
        value = raw[scope]
        values = [value] if isinstance(value, str) else value
        if (
            not isinstance(values, list)
            or not values
            or not all(isinstance(v, str) and v for v in values)
        ):
            raise ScenarioError(f"{where}: {scope} must be a name or a list of names")
        names = tuple(values)
    sizes = [k for k in ("pct", "limits") if k in raw]
    if len(sizes) != 1:
        raise ScenarioError(f"{where}: give exactly one of pct or limits")
    size = raw[sizes[0]]
    if isinstance(size, bool) or not isinstance(size, int | float) or not math.isfinite(size):
        raise ScenarioError(f"{where}: {sizes[0]} must be a finite number, got {size!r}")
    if sizes[0] == "pct":
        if size <= -100:
            raise ScenarioError(f"{where}: pct {size} would take prices to zero or below")
        return Move(scope, names, pct=float(size))
    return Move(scope, names, limits=float(size))


def scenarios_from_records(records: Iterable[Mapping[str, Any]], where: str) -> dict[str, Scenario]:
    out: dict[str, Scenario] = {}
    for i, record in enumerate(records):
        scenario = scenario_from_record(record, f"{where}: scenario #{i + 1}")
        if scenario.name in out:
            raise ScenarioError(f"{where}: scenario {scenario.name!r} defined twice")
        out[scenario.name] = scenario
    return out


def scenario_to_record(scenario: Scenario) -> dict[str, Any]:
    """A scenario as the plain record `scenario_from_record` reads back (sent to the shards)."""
    moves: list[dict[str, Any]] = []
    for m in scenario.moves:
        scope: dict[str, Any] = {"all": True} if m.scope == "all" else {m.scope: list(m.names)}
        size = {"pct": m.pct} if m.pct is not None else {"limits": m.limits}
        moves.append({**scope, **size})
    return {"name": scenario.name, "description": scenario.description, "moves": moves,
            "cap_at_limit": scenario.cap_at_limit, "reference": scenario.reference}  # fmt: skip


def uniform(pct: float, name: str | None = None) -> Scenario:
    """Every contract moved by `pct` percent (the reverse stress and ad-hoc what-ifs)."""
    return Scenario(name or f"all{pct:+g}%", f"every contract {pct:+g}%", (Move("all", (), pct),))


@dataclass(frozen=True, slots=True)
class StressPrices:
    """Stressed prices per instrument, aligned with the instruments the caller passed."""

    instruments: tuple[str, ...]
    before: np.ndarray
    after: np.ndarray
    moved: np.ndarray  # bool: the scenario covers it
    capped: np.ndarray  # bool: the cap at the limit cut the move
    at_limit: np.ndarray  # int8: +1 at the upper limit, -1 at the lower, 0 inside


def stressed_prices(
    scenario: Scenario,
    instruments: Sequence[str],
    specs: Sequence[ContractSpec],
    last: np.ndarray,
    pre_settlement: np.ndarray,
    upper_limit: np.ndarray | None = None,
    lower_limit: np.ndarray | None = None,
) -> StressPrices:
    """Apply a scenario to the prices of `instruments` (vectorized over contracts).

    Limits default to previous settlement × (1 ± limit rate) when the feed gave none. A contract
    with neither a last price nor a previous settlement cannot be moved and keeps NaN.
    """
    n = len(instruments)
    last = np.asarray(last, dtype=float)
    pre = np.asarray(pre_settlement, dtype=float)
    ref = np.where(np.isfinite(pre), pre, last) if scenario.reference == "pre_settlement" else last
    rate = np.array([s.limit_rate for s in specs], dtype=float)
    base = np.where(np.isfinite(pre), pre, last)
    upper = _or(upper_limit, base * (1 + rate), n)
    lower = _or(lower_limit, base * (1 - rate), n)
    pct = np.full(n, np.nan)
    limits = np.full(n, np.nan)
    for i, (instrument, spec) in enumerate(zip(instruments, specs, strict=True)):
        move = scenario.move_for(instrument, spec)
        if move is not None:
            if move.pct is not None:
                pct[i] = move.pct
            else:
                limits[i] = move.limits
    after = last.copy()
    by_pct = np.isfinite(pct)
    after[by_pct] = ref[by_pct] * (1 + pct[by_pct] / 100.0)
    by_limits = np.isfinite(limits)
    # n limit moves compound from the reference: one is today's limit, two the next day's.
    after[by_limits] = ref[by_limits] * (
        1 + np.sign(limits[by_limits]) * rate[by_limits]
    ) ** np.abs(limits[by_limits])
    one = by_limits & (np.abs(limits) == 1)
    after[one] = np.where(limits[one] < 0, lower[one], upper[one])
    capped = np.zeros(n, dtype=bool)
    if scenario.cap_at_limit:
        clipped = np.clip(after, lower, upper)
        capped = by_pct & ~np.isclose(clipped, after) & np.isfinite(after)
        after = np.where(by_pct & np.isfinite(clipped), clipped, after)
    at_limit = np.where(after >= upper - 1e-9, 1, np.where(after <= lower + 1e-9, -1, 0))
    return StressPrices(tuple(instruments), last, after, by_pct | by_limits, capped,
                        at_limit.astype(np.int8))  # fmt: skip


def _or(given: np.ndarray | None, default: np.ndarray, n: int) -> np.ndarray:
    if given is None:
        return default
    given = np.asarray(given, dtype=float)
    return np.where(np.isfinite(given), given, default) if given.shape == (n,) else default


def product_moves_from_history(
    closes: Mapping[str, tuple[float, float]], name: str, description: str
) -> Scenario:
    """A historical day as a scenario: per product, the move from the previous close to the
    day's close (`closes[product] = (previous_close, close)`), in percent."""
    moves = []
    for product, (prev, close) in sorted(closes.items()):
        if not (math.isfinite(prev) and math.isfinite(close)) or prev == 0:
            continue
        moves.append(Move("product", (product,), pct=100.0 * (close / prev - 1.0)))
    if not moves:
        raise ScenarioError(f"scenario {name!r}: no product has prices on both days")
    return Scenario(name, description, tuple(moves), cap_at_limit=False)


def products_of(instruments: Iterable[str]) -> list[str]:
    return sorted({product_of(i) for i in instruments})
