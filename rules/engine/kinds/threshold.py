"""threshold: `risk_degree > 0.8`, `available < 100000` — the workhorse kind.

Rules of one metric, operator and scope are evaluated as one bank: thresholds are sorted, so
an account's value tells with one `searchsorted` how many of the bank's rules it breaches. A
bank of 1,000 rules costs about what one rule costs while nothing crosses; only (rule, key)
pairs that breach or could re-arm are looked at one by one. Arming state is a bool matrix
(rule × key); episode numbers, which change only when a rule fires, are kept per fired pair.
The one hysteresis of the engine (market, book and fund-flow rules use it too): fire once on
crossing, re-arm only once the value is strictly back on the safe side of `rearm`.

Scopes: accounts (AccountShard), hierarchy nodes (Hierarchy), and commodity / business-unit
exposure (ExposureBook limits, rules.exposure's metrics).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rules.engine.spec import BOOK_SCOPES, NODE_SCOPES, RuleSpec
from rules.engine.template import Fired, KeyedGroup, Param, RuleKind, Source


class ThresholdKind(RuleKind):
    name = "threshold"
    scopes = ("account", *NODE_SCOPES, *BOOK_SCOPES)
    params = (Param("commodities", tuple, None, "exposure rules: only these commodities' books"),)

    def place(self, spec: RuleSpec) -> str:
        if spec.scope in BOOK_SCOPES:
            return "books"
        return "account" if spec.scope == "account" else "hierarchy"

    def group_key(self, spec: RuleSpec) -> tuple[Any, ...]:
        family = ">" if spec.op.startswith(">") else "<"
        return ("threshold", spec.scope, spec.metric, family, spec.op in (">", "<"), spec.sessions)

    def build(self, specs: list[RuleSpec]) -> KeyedGroup:
        return ThresholdBank(specs)


class ThresholdBank(KeyedGroup):
    """Hysteresis state of many threshold rules of one metric and operator family."""

    def __init__(self, specs: list[RuleSpec]) -> None:
        super().__init__(specs)
        self.sign = 1.0 if specs[0].op.startswith(">") else -1.0
        self.strict = specs[0].op in (">", "<")
        t = self.sign * np.array([s.threshold for s in specs], dtype=np.float64)
        r = self.sign * np.array([s.rearm_level for s in specs], dtype=np.float64)
        self.t_order = np.argsort(t, kind="stable")
        self.t_sorted = t[self.t_order]
        self.r_order = np.argsort(r, kind="stable")
        self.r_sorted = r[self.r_order]
        self.index = {s.id: i for i, s in enumerate(specs)}
        self.armed = np.ones((len(specs), 0), dtype=bool)
        self.disarmed = np.zeros(0, dtype=np.int32)  # per key: how many rules are disarmed
        self.ep: list[dict[int, int]] = [{} for _ in specs]

    def resize(self, n: int) -> None:
        old = self.armed.shape[1]
        if n > old:
            cap = max(n, 2 * old, 64)
            armed = np.ones((len(self.specs), cap), dtype=bool)
            armed[:, :old] = self.armed
            self.armed = armed
            disarmed = np.zeros(cap, dtype=np.int32)
            disarmed[:old] = self.disarmed
            self.disarmed = disarmed
        self.n = max(self.n, n)

    def _breach_counts(self, v: np.ndarray) -> np.ndarray:
        nb = np.searchsorted(self.t_sorted, v, side="left" if self.strict else "right")
        nb[np.isnan(v)] = 0
        return nb

    def _clear_starts(self, v: np.ndarray) -> np.ndarray:
        """Index in rearm order from which rules are cleared (rearm > v); NaN clears none."""
        c = np.searchsorted(self.r_sorted, v, side="right")
        c[np.isnan(v)] = len(self.specs)
        return c

    def evaluate(self, source: Source, rows: np.ndarray, ts: float) -> list[Fired]:
        if rows.size == 0:
            return []
        raw = np.asarray(source(self.metric, rows), dtype=np.float64)
        return self.evaluate_values(raw, rows)

    def evaluate_values(self, raw: np.ndarray, rows: np.ndarray) -> list[Fired]:
        self.resize(int(rows.max()) + 1 if rows.size else 0)
        if len(self.specs) == 1:
            return self._evaluate_one(raw, rows)
        v = self.sign * raw
        nb = self._breach_counts(v)
        f_rule, f_row, f_at = _pairs(nb, rows, self.t_order, np.zeros_like(nb))
        if f_rule.size:
            armed = self.armed[f_rule, f_row]
            f_rule, f_row, f_at = f_rule[armed], f_row[armed], f_at[armed]
        cand = np.flatnonzero(self.disarmed[rows] > 0)
        r_rule = r_row = np.zeros(0, dtype=np.int64)
        if cand.size:
            starts = self._clear_starts(v[cand])
            r_rule, r_row, _ = _pairs(len(self.specs) - starts, rows[cand], self.r_order, starts)
            if r_rule.size:
                keep = ~self.armed[r_rule, r_row]
                r_rule, r_row = r_rule[keep], r_row[keep]
        if r_rule.size:
            self.armed[r_rule, r_row] = True
            np.subtract.at(self.disarmed, r_row, 1)
        if not f_rule.size:
            return []
        self.armed[f_rule, f_row] = False
        np.add.at(self.disarmed, f_row, 1)
        out = []
        for r in np.unique(f_rule):
            sel = f_rule == r
            fired_rows = f_row[sel]
            ep = self.ep[int(r)]
            episodes = np.empty(fired_rows.size, dtype=np.int64)
            for j, row in enumerate(fired_rows.tolist()):
                episodes[j] = ep[row] = ep.get(row, 0) + 1
            out.append(Fired(self.specs[int(r)], fired_rows, raw[f_at[sel]], episodes))
        return out

    def _evaluate_one(self, raw: np.ndarray, rows: np.ndarray) -> list[Fired]:
        at, episodes = self.step_one(raw, rows)
        if not at.size:
            return []
        return [Fired(self.specs[0], rows[at], raw[at], episodes)]

    def step_one(self, raw: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A bank of one rule (market and book rules), element-wise: the positions in `rows`
        that fire now and their episode numbers (the same transitions as the sorted path)."""
        v = raw if self.sign > 0 else -raw
        t = self.t_sorted[0]
        armed = self.armed[0, rows]
        fire = armed & ((v > t) if self.strict else (v >= t))  # NaN: neither fires nor re-arms
        rearm = ~armed & (v < self.r_sorted[0])
        if rearm.any():
            back = rows[rearm]
            self.armed[0, back] = True
            self.disarmed[back] = 0
        at = np.flatnonzero(fire)
        episodes = np.empty(at.size, dtype=np.int64)
        if at.size:
            fired_rows = rows[at]
            self.armed[0, fired_rows] = False
            self.disarmed[fired_rows] = 1
            ep = self.ep[0]
            for j, row in enumerate(fired_rows.tolist()):
                episodes[j] = ep[row] = ep.get(row, 0) + 1
        return at, episodes

    def evaluate_path(
        self, values: np.ndarray, rows: np.ndarray, steps: np.ndarray, ts: np.ndarray
    ) -> list[tuple[int, Fired]]:
        """Successive values of `rows` (one row per step) in one pass per rule: the state
        before each step follows from the last breach or clear before it (they exclude each
        other), so firing and re-arming need no loop over steps. Same results as calling
        `evaluate_values` step by step (tested)."""
        if values.shape[0] == 1:
            return [(int(steps[0]), f) for f in self.evaluate_values(values[0], rows)]
        if rows.size == 0:
            return []
        self.resize(int(rows.max()) + 1)
        v = self.sign * values
        s, u = v.shape
        t_idx = np.arange(s)[:, None]
        cols = np.arange(u)
        out: list[tuple[int, int, Fired]] = []
        for r, spec in enumerate(self.specs):
            t = self.sign * spec.threshold
            breach = (v > t) if self.strict else (v >= t)
            clear = v < self.sign * spec.rearm_level
            armed0 = self.armed[r, rows]
            if not breach.any() and not (clear.any() and not armed0.all()):
                continue
            ev = np.where(breach, 1, np.where(clear, -1, 0)).astype(np.int8)
            last = np.maximum.accumulate(np.where(ev != 0, t_idx, -1), axis=0)
            prev = np.vstack([np.full((1, u), -1), last[:-1]])
            before = np.where(prev >= 0, ev[np.maximum(prev, 0), cols] == -1, armed0[None, :])
            fire = breach & before
            end = last[-1]
            after = np.where(end >= 0, ev[np.maximum(end, 0), cols] == -1, armed0)
            self.armed[r, rows] = after
            self.disarmed[rows] += (armed0 & ~after).astype(np.int32) - (~armed0 & after).astype(
                np.int32
            )
            if not fire.any():
                continue
            at_t, at_c = np.nonzero(fire)
            ep = self.ep[r]
            episodes = np.empty(at_t.size, dtype=np.int64)
            for j, row in enumerate(rows[at_c].tolist()):
                episodes[j] = ep[row] = ep.get(row, 0) + 1
            for k in np.unique(at_t).tolist():
                sel = at_t == k
                c = at_c[sel]
                out.append((k, r, Fired(spec, rows[c], values[k, c], episodes[sel])))
        out.sort(key=lambda x: (x[0], x[1]))
        return [(int(steps[k]), f) for k, _r, f in out]

    def uncertain(self, lo: np.ndarray, hi: np.ndarray, rows: np.ndarray, ts: float) -> np.ndarray:
        self.resize(int(rows.max()) + 1 if rows.size else 0)
        a, b = (lo, hi) if self.sign > 0 else (-hi, -lo)
        out = np.isnan(a) | np.isnan(b)
        nb = self._breach_counts(np.where(np.isnan(b), -np.inf, b))
        reach = nb > 0
        some_disarmed = self.disarmed[rows] > 0
        out |= reach & ~some_disarmed
        check = np.flatnonzero(reach & some_disarmed)
        if check.size:
            zero = np.zeros(check.size, dtype=np.int64)
            rule, row, at = _pairs(nb[check], rows[check], self.t_order, zero)
            out[check[at[self.armed[rule, row]]]] = True
        starts = self._clear_starts(np.where(np.isnan(a), np.inf, a))
        out |= some_disarmed & (starts < len(self.specs))
        return out

    def rearm(self, rows: np.ndarray) -> None:
        """Re-arm every rule of the bank for `rows` (point events: each judged alone)."""
        self.armed[:, rows] = True
        self.disarmed[rows] = 0

    def export(self, rule_id: str) -> Any:
        i = self.index[rule_id]
        return self.armed[i, : self.n].copy(), dict(self.ep[i])

    def restore(self, rule_id: str, state: Any) -> None:
        armed, ep = state
        i = self.index[rule_id]
        self.resize(armed.shape[0])
        self.armed[i, : armed.shape[0]] = armed
        self.ep[i] = dict(ep)
        self.disarmed[: self.n] = (~self.armed[:, : self.n]).sum(axis=0)

    def episode(self, rule_id: str, row: int) -> int:
        return self.ep[self.index[rule_id]].get(row, 0)


def _owner(counts: np.ndarray) -> np.ndarray:
    """For pairs expanded from `counts`, the index of the item each pair came from."""
    return np.repeat(np.arange(counts.size), counts)


def _pairs(
    counts: np.ndarray, rows: np.ndarray, order: np.ndarray, starts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expand (row, k-th rule from `starts` in `order`) pairs: rule index, key row and the
    position in `rows` each pair came from."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    if total == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    at = _owner(counts)
    offset = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    return order[starts[at] + offset], rows[at], at
