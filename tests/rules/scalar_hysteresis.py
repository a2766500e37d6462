"""The scalar reference of the engine's hysteresis (what rules/threshold.py was before the
engine's ThresholdBank became the one hysteresis): the bank is tested against it.

A key fires once when its value crosses the threshold and re-arms only after the value falls
back past a lower (or, for `<` rules, higher) re-arm level, so a metric that flaps around the line
does not flood the channels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

OPERATORS = (">", ">=", "<", "<=")


@dataclass(slots=True)
class ThresholdRule:
    rule_id: str
    metric: str
    op: str
    threshold: float
    rearm: float
    severity: str = "warning"
    description: str = ""
    action: dict | None = None

    def __post_init__(self) -> None:
        if self.op not in OPERATORS:
            raise ValueError(f"rule {self.rule_id}: op must be one of {OPERATORS}, got {self.op!r}")
        above = self.op.startswith(">")
        if above and self.rearm > self.threshold or not above and self.rearm < self.threshold:
            side = "at or below" if above else "at or above"
            raise ValueError(
                f"rule {self.rule_id}: rearm {self.rearm} must be {side} threshold {self.threshold}"
            )

    def breached(self, value: np.ndarray) -> np.ndarray:
        if self.op == ">":
            return value > self.threshold
        if self.op == ">=":
            return value >= self.threshold
        if self.op == "<":
            return value < self.threshold
        return value <= self.threshold

    def cleared(self, value: np.ndarray) -> np.ndarray:
        """Where the value is back on the safe side of the re-arm level (NaN never re-arms)."""
        if self.op.startswith(">"):
            return value < self.rearm
        return value > self.rearm


@dataclass(slots=True)
class HysteresisState:
    """Per-key arming state and episode counter for one rule."""

    armed: np.ndarray = field(default_factory=lambda: np.ones(0, dtype=bool))
    episode: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def resize(self, n: int) -> None:
        """Grow (new keys start armed) or shrink to n keys."""
        old = self.armed.shape[0]
        if n > old:
            self.armed = np.concatenate([self.armed, np.ones(n - old, dtype=bool)])
            self.episode = np.concatenate([self.episode, np.zeros(n - old, dtype=np.int64)])
        elif n < old:
            self.armed = self.armed[:n]
            self.episode = self.episode[:n]


def evaluate(
    rule: ThresholdRule, value: np.ndarray, state: HysteresisState, rows: np.ndarray | None = None
) -> np.ndarray:
    """Return the key indices that fire now; update `state` in place.

    `rows` restricts evaluation to some keys (incremental marking); `value` is aligned with them.
    """
    if rows is None:
        rows = np.arange(value.shape[0])
    armed = state.armed[rows]
    fire = armed & rule.breached(value)
    rearm = ~armed & rule.cleared(value)
    fired_rows = rows[fire]
    state.armed[fired_rows] = False
    state.armed[rows[rearm]] = True
    state.episode[fired_rows] += 1
    return fired_rows
