"""Market rules: which statistic of a contract crossing which line becomes a RiskEvent.

Rules are data (`MarketRule`, from the config); each keeps per-contract hysteresis (fires once,
re-arms only after the metric is back past `rearm`) so a price hovering at a line does not flood
the correlator. A rule may be restricted to products and to named sessions ("night", "day",
"pre_open", "open", "close"; see rules.sessions): outside them its contracts are not evaluated
and keep their arming state.

Kinds and the metric each compares with its threshold:

| kind          | metric                                                    | fires when |
| ------------- | --------------------------------------------------------- | ---------- |
| jump          | largest |move over N s| / expected size in the slice       | > threshold |
| near_limit    | smallest distance to the limit price, fraction of price   | < threshold |
| limit_locked  | 1 while the contract is locked at a limit                 | > threshold |
| volume_spike  | volume of the spike window / baseline expectation         | > threshold |
| oi_spike      | |open-interest change| of the window / baseline expectation | > threshold |
| volatility    | annualized realized volatility over `window_s`            | > threshold |
| stale         | seconds without a tick, live contracts in their session   | > threshold |
| feed_silent   | seconds without any tick from the whole feed, in session  | > threshold |

Pure: numpy and stdlib only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rules.market_stats import SliceSignals
from rules.model import SEVERITIES
from rules.sessions import label_mask
from rules.threshold import HysteresisState, ThresholdRule, evaluate

TICK_KINDS = ("jump", "near_limit", "limit_locked", "volume_spike", "oi_spike", "volatility")
CHECK_KINDS = ("stale", "feed_silent")  # evaluated on a timer, not on ticks
KINDS = TICK_KINDS + CHECK_KINDS


@dataclass(frozen=True, slots=True)
class MarketRule:
    id: str
    kind: str
    threshold: float
    rearm: float
    severity: str = "warning"
    sessions: tuple[str, ...] = ()  # empty: whenever the contract ticks
    products: tuple[str, ...] = ()  # empty: every product; product codes or instrument ids
    window_s: int = 0  # volatility: the window of vol_windows_s to watch
    description: str = ""

    @property
    def op(self) -> str:
        return "<" if self.kind == "near_limit" else ">"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"market rule {self.id}: kind {self.kind!r} not one of {KINDS}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"market rule {self.id}: severity must be one of {SEVERITIES}")
        label_mask(self.sessions)
        ThresholdRule(self.id, self.kind, self.op, self.threshold, self.rearm)  # checks rearm side

    def applies_to(self, instrument: str, product: str) -> bool:
        return not self.products or instrument in self.products or product in self.products


@dataclass(slots=True)
class Fired:
    """Contracts (rows) a rule fired for, with the value that crossed and the episode number."""

    rule: MarketRule
    rows: np.ndarray
    values: np.ndarray
    episodes: np.ndarray
    picks: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


class MarketRuleSet:
    """Rules with per-contract arming state; rows are added as contracts appear."""

    def __init__(self, rules: list[MarketRule], vol_windows_s: tuple[int, ...]) -> None:
        for rule in rules:
            if rule.kind == "volatility" and rule.window_s not in vol_windows_s:
                raise ValueError(
                    f"market rule {rule.id}: window_s {rule.window_s} not in {vol_windows_s}"
                )
        ids = [r.id for r in rules]
        if len(set(ids)) != len(ids):
            raise ValueError(f"market rule ids must be unique, got {ids}")
        self.rules = list(rules)
        self._threshold = [ThresholdRule(r.id, r.kind, r.op, r.threshold, r.rearm) for r in rules]
        self._state = [HysteresisState() for _ in rules]
        self._masks = [label_mask(r.sessions) for r in rules]
        self._applies = [np.zeros(0, dtype=bool) for _ in rules]
        self.n = 0

    def add_rows(self, instruments: list[str], products: list[str]) -> None:
        self.n += len(instruments)
        for i, rule in enumerate(self.rules):
            more = [rule.applies_to(a, p) for a, p in zip(instruments, products, strict=True)]
            self._applies[i] = np.concatenate([self._applies[i], np.array(more, dtype=bool)])
            self._state[i].resize(self.n)

    def applies(self, index: int) -> np.ndarray:
        """Per contract row: whether rule `index` covers its product."""
        return self._applies[index]

    def of_kind(self, kind: str) -> list[int]:
        return [i for i, r in enumerate(self.rules) if r.kind == kind]

    @staticmethod
    def metric(rule: MarketRule, sig: SliceSignals) -> np.ndarray:
        if rule.kind == "jump":
            return sig.jump_z
        if rule.kind == "near_limit":
            return sig.near_limit
        if rule.kind == "limit_locked":
            return sig.locked.astype(float)
        if rule.kind == "volume_spike":
            return sig.volume_ratio
        if rule.kind == "oi_spike":
            return sig.oi_ratio
        return sig.rv[rule.window_s]

    def on_slice(self, sig: SliceSignals, session_bits: np.ndarray) -> list[Fired]:
        """Evaluate every tick rule on the contracts of a slice.

        `session_bits` are the session labels of each contract of the slice (rules.sessions
        bitmask, aligned with `sig.rows`).
        """
        out = []
        for i, rule in enumerate(self.rules):
            if rule.kind not in TICK_KINDS:
                continue
            keep = self._applies[i][sig.rows]
            if self._masks[i]:
                keep &= (session_bits & self._masks[i]) != 0
            if not keep.any():
                continue
            picks = np.flatnonzero(keep)
            value = self.metric(rule, sig)[picks]
            fired = self._fire(i, value, sig.rows[picks])
            if fired is not None:
                fired.picks = picks[np.isin(sig.rows[picks], fired.rows)]
                out.append(fired)
        return out

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
            fired.values = values[np.searchsorted(rows, fired.rows)]
        return fired

    def _fire(self, i: int, value: np.ndarray, rows: np.ndarray) -> Fired | None:
        state = self._state[i]
        fired_rows = evaluate(self._threshold[i], value, state, rows)
        if fired_rows.size == 0:
            return None
        pos = np.searchsorted(rows, fired_rows)  # rows are ascending (unique, sorted slices)
        return Fired(self.rules[i], fired_rows, value[pos], state.episode[fired_rows].copy())


class SilenceState:
    """One feed-level rule (feed_silent): a single key with hysteresis and episodes."""

    def __init__(self, rule: MarketRule) -> None:
        self.rule = rule
        self.armed = True
        self.episode = 0

    def check(self, seconds_silent: float, in_session: bool) -> bool:
        """True when the feed just went silent (fires once per silence)."""
        if not in_session:
            return False
        if self.armed and seconds_silent > self.rule.threshold:
            self.armed = False
            self.episode += 1
            return True
        if not self.armed and seconds_silent < self.rule.rearm:
            self.armed = True
        return False
