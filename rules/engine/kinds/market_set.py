"""The market rules of a feed (or of the backtest's replay) over its contracts.

Contracts are rows, added as they first tick. Each rule is a one-rule ThresholdBank (the
engine's single hysteresis: fire once on crossing, re-arm only past `rearm`) over those rows;
`on_slice` evaluates the tick kinds on a slice of ticked contracts, `on_values` a timer kind
(stale) on given rows, and `SilenceState` the one feed-level key (feed_silent). Rules equal to
an old one keep its per-contract arming state and episodes across a hot reload (`carry_over`).

Pure: numpy and stdlib only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from rules.engine.evidence import evidence_of
from rules.engine.kinds.market import ADAPTIVE_KINDS, KIND_OF, TICK_KINDS
from rules.engine.kinds.threshold import ThresholdBank
from rules.engine.kinds.vol_scaled import VolScaledMove
from rules.engine.spec import RuleSpec
from rules.market_stats import SliceSignals
from rules.sessions import label_mask


@dataclass(slots=True)
class Fired:
    """Contracts (rows) a rule fired for, with the value that crossed and the episode number;
    `picks` are the fired rows' positions in the slice (on_slice) or in the rows given."""

    rule: RuleSpec
    rows: np.ndarray
    values: np.ndarray
    episodes: np.ndarray
    picks: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    attributes: dict[str, object] | None = None  # adaptive kinds: per fired row (evidence)

    def evidence(self, j: int) -> dict[str, object] | None:
        return evidence_of(self.attributes, j) if self.attributes else None


def products_of(spec: RuleSpec) -> tuple[str, ...]:
    return tuple(spec.param("products") or ())


def applies_to(spec: RuleSpec, instrument: str, product: str) -> bool:
    products = products_of(spec)
    return not products or instrument in products or product in products


class MarketRuleSet:
    """Market rules with per-contract arming state; rows are added as contracts appear."""

    def __init__(self, rules: Iterable[RuleSpec], vol_windows_s: Sequence[int]) -> None:
        rules = list(rules)
        for rule in rules:
            if rule.kind == "volatility" and rule.param("window_s") not in tuple(vol_windows_s):
                raise ValueError(
                    f"market rule {rule.id}: window_s {rule.param('window_s')} not in "
                    f"{tuple(vol_windows_s)}"
                )
        ids = [r.id for r in rules]
        if len(set(ids)) != len(ids):
            raise ValueError(f"market rule ids must be unique, got {ids}")
        self.rules = rules
        self._banks = [ThresholdBank([r]) for r in rules]
        self._masks = [label_mask(r.sessions) for r in rules]
        self._applies = [np.zeros(0, dtype=bool) for _ in rules]
        # Adaptive kinds keep per-contract baselines (rules.engine.kinds.vol_scaled).
        self._adaptive = {i: VolScaledMove.of(r) for i, r in enumerate(rules)
                          if r.kind in ADAPTIVE_KINDS}  # fmt: skip
        self._pending: dict[int, dict[str, object]] = {}  # restored state of unseen contracts
        self.names: list[str] = []
        self.n = 0

    def add_rows(self, instruments: list[str], products: list[str]) -> None:
        first = self.n
        self.n += len(instruments)
        self.names += list(instruments)
        for i, rule in enumerate(self.rules):
            more = [applies_to(rule, a, p) for a, p in zip(instruments, products, strict=True)]
            self._applies[i] = np.concatenate([self._applies[i], np.array(more, dtype=bool)])
            self._banks[i].resize(self.n)
        for i, state in list(self._pending.items()):
            rows = {name: first + k for k, name in enumerate(instruments)}
            self._adaptive[i].resize(self.n)
            self._adaptive[i].restore_rows(state, rows)  # type: ignore[arg-type]

    def applies(self, index: int) -> np.ndarray:
        """Per contract row: whether rule `index` covers its product."""
        return self._applies[index]

    def of_kind(self, kind: str) -> list[int]:
        return [i for i, r in enumerate(self.rules) if r.kind == kind]

    def episode(self, index: int, row: int) -> int:
        return self._banks[index].episode(self.rules[index].id, row)

    @staticmethod
    def metric(rule: RuleSpec, sig: SliceSignals) -> np.ndarray:
        """The slice signal a tick kind compares (MarketKind.signal)."""
        value = getattr(sig, KIND_OF[rule.kind].signal)
        if isinstance(value, dict):  # realized volatility by window
            value = value[int(rule.param("window_s"))]
        return np.asarray(value, dtype=np.float64)

    def on_slice(self, sig: SliceSignals, session_bits: np.ndarray) -> list[Fired]:
        """Evaluate every tick rule on the contracts of a slice.

        `session_bits` are the session labels of each contract of the slice (rules.sessions
        bitmask, aligned with `sig.rows`).
        """
        out = []
        for i, rule in enumerate(self.rules):
            if rule.kind not in TICK_KINDS:
                continue
            judged = self._adaptive[i].on_slice(sig) if i in self._adaptive else None
            keep = self._applies[i][sig.rows]
            if self._masks[i]:
                keep &= (session_bits & self._masks[i]) != 0
            if not keep.any():
                continue
            picks = np.flatnonzero(keep)
            value = (judged["score"] if judged is not None else self.metric(rule, sig))[picks]
            fired = self._fire(i, value, sig.rows[picks])
            if fired is not None:
                if judged is not None:
                    fired.attributes = self._evidence(i, judged, picks[fired.picks])
                fired.picks = picks[fired.picks]  # positions among picks → in the slice
                out.append(fired)
        return out

    def _evidence(self, i: int, judged: dict[str, np.ndarray], at: np.ndarray) -> dict[str, object]:
        rule = self.rules[i]
        return {"score": judged["score"][at], "baseline": judged["baseline"][at],
                "move": judged["move"][at], "threshold": float(rule.threshold),
                "baseline_of": self._adaptive[i].describe(), "unit": "σ", "fmt": "pct"}  # fmt: skip

    # -- recoverable state of the adaptive kinds (a feed's snapshot) --------------------------
    def adaptive_state(self) -> dict[str, object]:
        """Plain data: per adaptive rule, its fingerprint and its baselines by instrument."""
        return {
            self.rules[i].id: {"fingerprint": self.rules[i].fingerprint(),
                               "state": st.state(self.names)}
            for i, st in self._adaptive.items()
        }  # fmt: skip

    def restore_adaptive(self, snapshot: dict[str, object]) -> list[str]:
        """Baselines of rules whose definition is unchanged (same fingerprint): contracts known
        now at once, the others when they first tick. Returns the rule ids restored."""
        got = []
        for i, st in self._adaptive.items():
            saved = snapshot.get(self.rules[i].id)
            if (
                not isinstance(saved, dict)
                or saved.get("fingerprint") != self.rules[i].fingerprint()
            ):
                continue
            state = saved["state"]
            st.restore_rows(state, {n: r for r, n in enumerate(self.names)})
            self._pending[i] = state
            got.append(self.rules[i].id)
        return got

    def on_values(
        self, index: int, rows: np.ndarray, values: np.ndarray, scale: np.ndarray | None = None
    ) -> Fired | None:
        """Evaluate rule `index` on given rows (ascending) for timer-driven kinds (stale).

        `scale` gives each row its own threshold: the rule compares `values × scale`, so a row
        with scale 0.5 crosses at twice the rule's threshold; events report the plain values.
        """
        compared = values if scale is None else values * scale
        fired = self._fire(index, compared, rows)
        if fired is not None and scale is not None:
            fired.values = values[fired.picks]
        return fired

    def _fire(self, i: int, value: np.ndarray, rows: np.ndarray) -> Fired | None:
        bank = self._banks[i]
        bank.resize(self.n)
        at, episodes = bank.step_one(value, rows)
        if not at.size:
            return None
        return Fired(self.rules[i], rows[at], value[at], episodes, at)

    def carry_over(
        self, rules: Iterable[RuleSpec], vol_windows: Sequence[int], names: list[str],
        products: list[str],
    ) -> MarketRuleSet:  # fmt: skip
        """A new set for the known contracts; rules equal to one of this set keep its
        per-contract arming state and episodes (hot reload fires nothing twice)."""
        new = MarketRuleSet(rules, vol_windows)
        if names:
            new.add_rows(list(names), list(products))
        before = {r.fingerprint(): i for i, r in enumerate(self.rules)}
        for i, rule in enumerate(new.rules):
            j = before.get(rule.fingerprint())
            if j is not None:
                new._banks[i].restore(rule.id, self._banks[j].export(self.rules[j].id))
                if j in self._adaptive:  # the baseline carries over with the rule
                    new._adaptive[i] = self._adaptive[j]
                    if j in self._pending:
                        new._pending[i] = self._pending[j]
        return new


class SilenceState:
    """One feed-level rule (feed_silent): a single key with the same hysteresis and episodes."""

    def __init__(self, rule: RuleSpec) -> None:
        self.rule = rule
        self._bank = ThresholdBank([rule])
        self._bank.resize(1)
        self._row = np.zeros(1, dtype=np.int64)

    @property
    def armed(self) -> bool:
        return bool(self._bank.armed[0, 0])

    @property
    def episode(self) -> int:
        return self._bank.episode(self.rule.id, 0)

    def check(self, seconds_silent: float, in_session: bool) -> bool:
        """True when the feed just went silent (fires once per silence)."""
        if not in_session:
            return False
        return bool(self._bank.evaluate_values(np.array([float(seconds_silent)]), self._row))
