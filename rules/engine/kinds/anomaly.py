"""anomaly: account behaviour scored by a model trained on history (rules.anomaly), live.

    [[rules]]
    id = "account.behaviour_anomaly"
    kind = "anomaly"
    model = "models/behaviour.json"    # infra.anomaly_models file, relative to the rules file
    model_version = "1a2b3c4d5e6f"     # optional pin: a different model is refused at load
    threshold = 1.0                    # × the model's threshold (its training alarm rate)
    window_s = 300                     # the feature window, and how often every account is scored
    halflife_windows = 48              # each account's own baseline (the *_vs_own features)

Per account the shard counts, over the open window, orders, cancels, fills and self-trades
(the order stream, `on_activity`), turnover and withdrawals (`on_amount`). When a window ends
(the first evaluation after it) every account of the shard is scored at once — one
feature matrix (rules.anomaly.feature_matrix, equity from the book) and one `model.score` —
and the accounts whose score is above `threshold` × the model's threshold fire, each window
judged alone. Then the window's figures join each account's own EW baseline and the counts
start again. The alert carries the score, the model's threshold, its version and the feature
that stood out most. The own baselines are part of the shard's journaled adaptive state.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rules.anomaly import AnomalyModel, feature_matrix
from rules.engine.kinds.adaptive import AdaptiveKind
from rules.engine.kinds.threshold import ThresholdBank
from rules.engine.spec import RuleSpec
from rules.engine.template import Fired, KeyedGroup, Param, Source

COUNTS = ("orders", "cancels", "trades", "self_trades", "turnover", "withdraw")
_ACTIVITY = {"order": "orders", "cancel": "cancels", "trade": "trades", "self_trade": "self_trades"}
OWN = ("orders", "cancels", "turnover")


class AnomalyKind(AdaptiveKind):
    name = "anomaly"
    defaults = {"metric": "behaviour"}
    params = (
        Param(
            "model", str, doc="the model file (infra.anomaly_models), relative to the rules file"
        ),
        Param("model_version", str, None, "pin: the model file must have this version"),
        Param("window_s", (int, float), 300.0, "feature window and scoring cadence, seconds"),
        Param("halflife_windows", (int, float), 48.0, "halflife of each account's own baseline"),
    )

    def check(self, spec: RuleSpec, metrics: Any) -> None:
        super().check(spec, metrics)
        if float(spec.param("window_s", 300.0)) <= 0:
            raise ValueError("window_s: must be positive")
        if float(spec.param("halflife_windows", 48.0)) <= 0:
            raise ValueError("halflife_windows: must be positive")
        record = spec.param("model_record")
        if record is None:
            raise ValueError("model: the model was not loaded (load rules with infra.rulesets)")
        model = AnomalyModel.from_record(record)
        pinned = spec.param("model_version")
        if pinned and pinned != model.version:
            raise ValueError(f"model_version: the model is {model.version!r}, pinned {pinned!r}")

    def build(self, specs: list[RuleSpec]) -> KeyedGroup:
        return AnomalyRule(specs[0])


class AnomalyRule(KeyedGroup):
    def __init__(self, spec: RuleSpec) -> None:
        super().__init__([spec])
        self.spec = spec
        self.model = AnomalyModel.from_record(spec.param("model_record"))
        self.window_s = float(spec.param("window_s", 300.0))
        self.alpha = 1.0 - 0.5 ** (1.0 / float(spec.param("halflife_windows", 48.0)))
        self.counts = {k: np.zeros(0) for k in COUNTS}
        self.own = {k: np.zeros(0) for k in OWN}
        self.seen = np.zeros(0, dtype=bool)  # an account has an own baseline
        self.window: int | None = None
        self.bank = ThresholdBank([spec])
        self.scored = 0  # windows scored (for the shard's stats)
        self.pending: dict[str, Any] | None = None  # restored baselines of unseen accounts

    def resize(self, n: int) -> None:
        k = n - self.seen.size
        if k > 0:
            for d in (self.counts, self.own):
                for name in d:
                    d[name] = np.concatenate([d[name], np.zeros(k)])
            self.seen = np.concatenate([self.seen, np.zeros(k, dtype=bool)])
        self.bank.resize(n)
        self.n = max(self.n, n)

    def _open(self, ts: float) -> None:
        if self.window is None:  # the first record opens the first window
            self.window = int(math.floor(ts / self.window_s))

    def on_activity(self, kind: str, rows: np.ndarray, ts: float) -> None:
        name = _ACTIVITY.get(kind)
        if name is not None and rows.size:
            self._open(ts)
            self.resize(int(rows.max()) + 1)
            np.add.at(self.counts[name], rows, 1.0)

    def on_amount(self, kind: str, rows: np.ndarray, amounts: np.ndarray, ts: float) -> None:
        if kind in ("turnover", "withdraw") and rows.size:
            self._open(ts)
            self.resize(int(rows.max()) + 1)
            np.add.at(self.counts[kind], rows, np.abs(amounts))

    def rolls(self, prev_ts: float | None, ts: float) -> bool:
        return self.window is None or math.floor(ts / self.window_s) > self.window

    def evaluate(self, source: Source, rows: np.ndarray, ts: float) -> list[Fired]:
        w = int(math.floor(ts / self.window_s))
        if self.window is None:
            self.window = w  # nothing counted yet: the first window starts now
            return []
        if w <= self.window or rows.size == 0:
            return []
        self.window = w
        self.resize(int(rows.max()) + 1)
        return self._score(source, rows)

    def _score(self, source: Source, rows: np.ndarray) -> list[Fired]:
        """Score the closed window for `rows` (every live account), fire, fold, reset."""
        cols = {k: v[rows] for k, v in self.counts.items()}
        cols["equity"] = np.asarray(source("equity", rows), dtype=np.float64)
        seen = self.seen[rows]
        own = {k: np.where(seen, self.own[k][rows], cols[k]) for k in OWN}
        x = feature_matrix(cols, own)
        score = self.model.score(x)
        self.scored += 1
        compared = score / self.model.threshold
        at, episodes = self.bank.step_one(compared, rows)
        self.bank.rearm(rows)  # each window is judged alone
        for k in OWN:  # the window joins each account's own baseline
            self.own[k][rows] = np.where(seen, self.own[k][rows] + self.alpha *
                                         (cols[k] - self.own[k][rows]), cols[k])  # fmt: skip
        self.seen[rows] = True
        for v in self.counts.values():
            v[:] = 0.0
        if not at.size:
            return []
        top = np.array(self.model.explain(x[at]), dtype=object)
        version = self.model.version
        text = np.array([f"{s:.1f} against its own and the population's behaviour (model "
                         f"{version} threshold {self.model.threshold:.2f}; most unusual: {f})"
                         for s, f in zip(score[at].tolist(), top.tolist(), strict=True)],
                        dtype=object)  # fmt: skip
        attrs = {"score": score[at], "baseline": float(self.model.threshold),
                 "threshold": float(self.spec.threshold) * float(self.model.threshold),
                 "feature": top, "model_version": version, "baseline_of": f"model {version}",
                 "unit": "", "text": text}  # fmt: skip
        return [Fired(self.spec, rows[at], compared[at], episodes, None, attrs)]

    def uncertain(self, lo: np.ndarray, hi: np.ndarray, rows: np.ndarray, ts: float) -> np.ndarray:
        return np.zeros(rows.shape[0], dtype=bool)  # prices do not move it

    # -- recoverable state: each account's own baseline, by account id ---------------------
    def state(self, names: Sequence[str]) -> dict[str, Any]:
        rows = np.flatnonzero(self.seen[: self.n]).tolist()
        return {"accounts": {names[r]: [float(self.own[k][r]) for k in OWN] for r in rows}}

    def restore_state(self, state: Mapping[str, Any], rows: Mapping[str, int]) -> None:
        """Own baselines back; the open window is counted again (the bus replays it)."""
        self.pending = dict(state["accounts"])
        self.adopt(rows)

    def adopt(self, rows: Mapping[str, int]) -> None:
        if not self.pending:
            return
        found = [(rows[a], v) for a, v in self.pending.items() if a in rows]
        if found:
            at = np.array([r for r, _ in found], dtype=np.int64)
            self.resize(int(at.max()) + 1)
            vals = np.array([v for _, v in found], dtype=np.float64)
            for j, k in enumerate(OWN):
                self.own[k][at] = vals[:, j]
            self.seen[at] = True
        self.pending = {a: v for a, v in self.pending.items() if a not in rows} or None

    def export(self, rule_id: str) -> Any:
        return (self.bank.export(rule_id), self.counts, self.own, self.seen, self.window,
                self.scored, self.pending)  # fmt: skip

    def restore(self, rule_id: str, state: Any) -> None:  # hot reload: the same objects
        bank, self.counts, self.own, self.seen, self.window, self.scored, self.pending = state
        self.bank.restore(rule_id, bank)
        self.resize(self.seen.size)
