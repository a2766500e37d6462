"""The template every rule kind follows (vnpy_riskmanager's idea: one kind per module, one
small base class, parameters declared on the class).

A kind says three things: which parameters it takes (`params`, so loading, validation and the
docs come from one list), where it runs (`place`: the actor that has the data), and how a
group of its rules is evaluated. Kinds whose rules run over many keys (accounts, hierarchy
nodes) build a `KeyedGroup`: per-key state for one or more rules, evaluated vectorized on the
rows a caller re-marked, with the same arming/episode semantics everywhere.
"""

from __future__ import annotations

import difflib
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from rules.engine.evidence import evidence_of
from rules.engine.spec import RuleSpec, check_common

REQUIRED = object()

# A metric source: values of `metric` for key rows (aligned with `rows`).
Source = Callable[[str, np.ndarray], np.ndarray]

PLACES = ("account", "transfers", "hierarchy", "books", "market", "correlator")


@dataclass(frozen=True)
class Param:
    name: str
    type: type | tuple[type, ...]
    default: Any = REQUIRED
    doc: str = ""
    choices: tuple[Any, ...] = ()

    def coerce(self, value: Any) -> Any:
        if self.type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if self.type is tuple and isinstance(value, list):
            value = tuple(value)
        if isinstance(value, bool) and self.type in (int, float):
            raise ValueError(f"{self.name}: expected a number, got {value!r}")
        if not isinstance(value, self.type):
            want = (
                self.type.__name__
                if isinstance(self.type, type)
                else "/".join(t.__name__ for t in self.type)
            )
            raise ValueError(f"{self.name}: expected {want}, got {value!r}")
        if self.choices and value not in self.choices:
            raise ValueError(f"{self.name}: must be one of {self.choices}, got {value!r}")
        return value


@dataclass(slots=True)
class Fired:
    """Keys (rows) one rule fired for now, the value that crossed and the episode number;
    `limits`, where a kind compares against a per-key line (fund flow: k × a key's mean), the
    line each key crossed (None: the rule's threshold); `attributes`, what an adaptive kind
    judged each key against (rules.engine.evidence: score, baseline, threshold used), one
    array per name aligned with `rows` or one value for all — it rides to the risk event, the
    alert, the journal and the page."""

    spec: RuleSpec
    rows: np.ndarray
    values: np.ndarray
    episodes: np.ndarray
    limits: np.ndarray | None = None
    attributes: dict[str, Any] | None = None

    def evidence(self, j: int) -> dict[str, Any] | None:
        """The plain attributes of the j-th fired key (None: the kind attaches none)."""
        return evidence_of(self.attributes, j) if self.attributes else None


class RuleKind:
    """Base of every kind. Subclasses set `name`, `params`, and override what they need."""

    name: ClassVar[str] = ""
    params: ClassVar[tuple[Param, ...]] = ()
    scopes: ClassVar[tuple[str, ...]] = ("account",)
    needs_metric: ClassVar[bool] = True
    # Common keys a rules file may leave out for this kind (e.g. the metric it always judges).
    defaults: ClassVar[dict[str, str]] = {}

    def place(self, spec: RuleSpec) -> str:
        return "account" if spec.scope == "account" else "hierarchy"

    def with_defaults(self, raw: dict[str, Any]) -> dict[str, Any]:
        """Validate the kind-specific keys of a rule and fill in defaults (ValueError: 'key: why')."""
        declared = {p.name: p for p in self.params}
        for key in raw:
            if key not in declared:
                hint = difflib.get_close_matches(key, list(declared), n=1)
                more = f" (did you mean '{hint[0]}'?)" if hint else ""
                raise ValueError(f"{key}: unknown key for kind {self.name!r}{more}")
        out: dict[str, Any] = {}
        for p in self.params:
            if p.name in raw:
                out[p.name] = p.coerce(raw[p.name])
            elif p.default is REQUIRED:
                raise ValueError(f"{p.name}: missing (kind {self.name!r} needs it: {p.doc})")
            elif p.default is not None:
                out[p.name] = p.default
        return out

    def check(self, spec: RuleSpec, metrics: Sequence[str]) -> None:
        """Semantic checks once the spec is built; raise ValueError('key: why')."""
        check_common(spec)
        if spec.scope not in self.scopes:
            raise ValueError(f"scope: kind {self.name!r} runs on {self.scopes}, got {spec.scope!r}")
        if self.needs_metric and metrics and spec.metric not in metrics:
            hint = difflib.get_close_matches(spec.metric, list(metrics), n=1)
            more = f" (did you mean '{hint[0]}'?)" if hint else ""
            raise ValueError(
                f"metric: {spec.metric!r} is not a metric of scope {spec.scope!r}{more}"
            )

    def group_key(self, spec: RuleSpec) -> tuple[Any, ...]:
        """Rules with the same key are evaluated as one group (a bank); default: alone."""
        return (self.name, spec.id)

    def build(self, specs: list[RuleSpec]) -> KeyedGroup:
        raise NotImplementedError(f"kind {self.name!r} is not evaluated over keys")


class KeyedGroup(ABC):
    """Per-key state of a group of rules sharing a metric, evaluated on many rows at once."""

    def __init__(self, specs: list[RuleSpec]) -> None:
        self.specs = specs
        self.metric = specs[0].metric
        self.scope = specs[0].scope
        self.sessions = specs[0].sessions
        self.n = 0
        self.last_ts: float | None = None  # when the engine last looked at this group

    def rolls(self, prev_ts: float | None, ts: float) -> bool:
        """Whether something other than a key's value changes the compared quantity between
        `prev_ts` and `ts` (a new baseline window): then every key is evaluated at `ts`."""
        return False

    def evaluate_path(
        self, values: np.ndarray, rows: np.ndarray, steps: np.ndarray, ts: np.ndarray
    ) -> list[tuple[int, Fired]]:
        """Evaluate successive values (one row of `values` per step, at times `ts`; `steps`
        numbers them) exactly as successive `evaluate` calls would; returns (step, Fired)."""
        out: list[tuple[int, Fired]] = []
        for i, step in enumerate(steps.tolist()):
            row_values = values[i]
            for f in self.evaluate(lambda _m, _r, v=row_values: v, rows, float(ts[i])):
                out.append((step, f))
        return out

    @abstractmethod
    def resize(self, n: int) -> None: ...

    @abstractmethod
    def evaluate(self, source: Source, rows: np.ndarray, ts: float) -> list[Fired]: ...

    def observe(self, source: Source, rows: np.ndarray, ts: float) -> None:
        """Record values without firing (kinds that remember history override this)."""
        return None

    def uncertain(self, lo: np.ndarray, hi: np.ndarray, rows: np.ndarray, ts: float) -> np.ndarray:
        """Rows whose state could change while the metric stays within [lo, hi] (the
        backtest's screen). Conservative default: every row."""
        return np.ones(rows.shape[0], dtype=bool)

    def on_activity(self, kind: str, rows: np.ndarray, ts: float) -> None:
        """Order-stream records (behaviour kinds); others ignore them."""
        return None

    def on_amount(self, kind: str, rows: np.ndarray, amounts: np.ndarray, ts: float) -> None:
        """Money an account moved (`turnover` of a fill, a `withdraw`): the anomaly model's
        features; others ignore them."""
        return None

    @abstractmethod
    def export(self, rule_id: str) -> Any: ...

    @abstractmethod
    def restore(self, rule_id: str, state: Any) -> None: ...
