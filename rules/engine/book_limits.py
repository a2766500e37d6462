"""The limit rules of one exposure book (threshold rules of scope commodity / business_unit),
evaluated by the one RuleEngine over the book's keys: the commodity, and "<commodity>/<unit>"
per business unit. Pure, so the ExposureBook actor and tests run the same code.

A rule may name `commodities` (only those books); a key whose figure is missing (a unit
metric the units do not have) is not judged and keeps its arming state, like a NaN.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from rules.engine.evaluator import RuleEngine
from rules.engine.kinds import kind_of
from rules.engine.kinds.session import SessionGate
from rules.engine.spec import BOOK_SCOPES, RuleSpec
from rules.exposure import limit_values


@dataclass(frozen=True, slots=True)
class LimitHit:
    spec: RuleSpec
    scope: str
    key: str
    value: float
    episode: int


class BookLimits:
    def __init__(self, commodity: str, gate: SessionGate | None = None) -> None:
        self.commodity = commodity
        self.engine = RuleEngine((), gate)
        self.keys: list[str] = []
        self.rows: dict[str, int] = {}

    def replace(self, specs: Iterable[RuleSpec]) -> dict[str, list[str]]:
        """Install this book's rules of `specs`; unchanged rules keep their state per key."""
        mine = [s for s in specs if kind_of(s.kind).place(s) == "books" and self.covers(s)]
        return self.engine.replace(mine)

    def covers(self, spec: RuleSpec) -> bool:
        commodities = spec.param("commodities") or ()
        return not commodities or self.commodity in commodities

    @property
    def ids(self) -> list[str]:
        return sorted(self.engine.specs)

    def row(self, key: str) -> int:
        found = self.rows.get(key)
        if found is None:
            found = self.rows[key] = len(self.keys)
            self.keys.append(key)
        return found

    def evaluate(self, figures: Mapping[str, Any], ts: float) -> list[LimitHit]:
        """What crosses now, from the book's figures (rules.exposure.OperatingBook)."""
        out: list[LimitHit] = []
        for scope in BOOK_SCOPES:
            keys = [self.commodity] if scope == "commodity" else [
                f"{self.commodity}/{unit}" for unit in figures.get("by_unit", {})
            ]  # fmt: skip
            rows = np.array([self.row(k) for k in keys], dtype=np.int64)

            def source(metric: str, r: np.ndarray, scope: str = scope) -> np.ndarray:
                values = limit_values(figures, metric, scope)
                return np.array([values.get(self.keys[i], np.nan) for i in r.tolist()])

            for f in self.engine.evaluate(source, rows, ts, scope=scope):
                for row, value, episode in zip(
                    f.rows.tolist(), f.values.tolist(), f.episodes.tolist(), strict=True
                ):
                    out.append(LimitHit(f.spec, scope, self.keys[row], value, int(episode)))
        return out
