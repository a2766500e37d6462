"""The MarketFeed's statistics and rules over recorded ticks, for the backtest.

Split from rules.engine.backtest (the accounts' replay) because the market side is independent
of the accounts until composite matching (app.backtest even runs it in a second process).
Data time throughout; non-positive prices raise `market.nonpositive_price` as in the feed.

Two paths, the same events (tests/rules/test_market_series.py): the default computes every
statistic over the whole day at once (rules.market_series, vectorized over time per contract)
and each rule's hysteresis as index arithmetic over each contract's slices; `stepwise=True`
folds the ticks second by second through rules.market_stats and MarketRuleSet as a feed does
(also the fallback when data time goes back, and the path of a rule set with an adaptive kind:
a learned baseline such as vol_scaled_move's folds bar by bar in data order, as in the feed).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rules.contracts import ContractTable, UnknownContract, product_of
from rules.engine.backtest_steps import Ticks
from rules.engine.kinds.market import ADAPTIVE_KINDS, KIND_OF, TICK_KINDS
from rules.engine.kinds.market_set import MarketRuleSet
from rules.market_series import SeriesSignals, series
from rules.market_signals import NONPOSITIVE_RULE, nonpositive_events
from rules.market_stats import MarketStats, StatsParams
from rules.model import RiskEvent
from rules.sessions import SessionCalendar, label_mask


class MarketReplay:
    """The MarketFeed's statistics and rules over recorded ticks (data time throughout)."""

    def __init__(self, specs: list[Any], table: ContractTable, calendar: SessionCalendar,
                 params: StatsParams, stepwise: bool = False) -> None:  # fmt: skip
        self.rules = list(specs)
        self.stepwise = stepwise
        self.table, self.calendar, self.params = table, calendar, params
        self.names: list[str] = []
        self.products: list[str] = []
        self.by_minute: dict[int, np.ndarray] = {}

    def run(self, ticks: Ticks) -> list[RiskEvent]:
        rules = MarketRuleSet(self.rules, self.params.vol_windows_s)
        stats = MarketStats(self.params)
        row_of = np.full(len(ticks.instruments), -1, dtype=np.int64)
        templates, sizes, limits = [], [], []
        for i, name in enumerate(ticks.instruments):
            try:
                spec = self.table.spec(product_of(name))
            except (UnknownContract, ValueError):
                continue  # no spec: the feed would quarantine it
            row_of[i] = len(self.names)
            self.names.append(name)
            self.products.append(spec.product)
            templates.append(self.calendar.template(spec.product))
            sizes.append(spec.tick_size)
            limits.append(spec.limit_rate)
        if not self.names:
            return []
        stats.add_rows(np.array(sizes), np.array(limits))
        rules.add_rows(self.names, self.products)
        template = np.array(templates, dtype=np.int64)
        rows = row_of[ticks.idx]
        ok = np.flatnonzero(rows >= 0)
        adaptive = any(r.kind in ADAPTIVE_KINDS for r in self.rules)
        if not (self.stepwise or adaptive):
            with np.errstate(invalid="ignore", divide="ignore"):
                try:
                    sig = series(rows, *(getattr(ticks, c) for c in _COLUMNS), np.array(sizes),
                                 np.array(limits), self.params, take=ok)  # fmt: skip
                except ValueError:
                    sig = None  # data time goes back: fold step by step
            if sig is not None:
                return self._series_events(rules, sig, template)
        seconds = np.floor(ticks.ts[ok])
        cuts = np.flatnonzero(np.diff(seconds)) + 1
        bounds = [0, *cuts[100::100].tolist(), ok.size]  # batches of 100 data seconds
        out: list[RiskEvent] = []
        with np.errstate(invalid="ignore", divide="ignore"):  # first ticks: no volatility yet
            for a, b in zip(bounds[:-1], bounds[1:], strict=True):
                sel = ok[a:b]
                signals = stats.update(
                    rows[sel], ticks.last[sel], ticks.ts[sel], volume=ticks.volume[sel],
                    open_interest=ticks.open_interest[sel], bid=ticks.bid[sel],
                    ask=ticks.ask[sel], upper=ticks.upper[sel], lower=ticks.lower[sel],
                    pre_settlement=ticks.pre_settlement[sel],
                )  # fmt: skip
                for sig in signals:
                    self._slice(rules, sig, template, out)
                out += nonpositive_events(signals, self.names, self.products, None)
        return out

    def _slice(
        self, rules: MarketRuleSet, sig: Any, template: np.ndarray, out: list[RiskEvent]
    ) -> None:
        bits = np.zeros(sig.rows.shape[0], dtype=np.int64)
        if any(r.sessions for r in self.rules):  # labels hold for whole minutes (SessionGate)
            minute = int(sig.second // 60)
            if minute not in self.by_minute:
                self.by_minute[minute] = self.calendar.template_states(float(minute * 60))[3].copy()
            bits = self.by_minute[minute][template[sig.rows]]
        for f in rules.on_slice(sig, bits):
            for j in range(f.rows.shape[0]):
                row, pick = int(f.rows[j]), int(f.picks[j])
                ts = float(sig.ts[pick])
                out.append(RiskEvent(
                    rule_id=f.rule.id, kind=f"market.{f.rule.kind}", key=self.names[row],
                    severity=f.rule.severity, value=float(f.values[j]),
                    threshold=float(f.rule.threshold), ts=ts, ingress_ts=ts,
                    episode=int(f.episodes[j]), dimension="market",
                    attributes={"product": self.products[row], "price": float(sig.last[pick]),
                                **_evidence(f, j)},
                ))  # fmt: skip

    def _series_events(
        self, rules: MarketRuleSet, sig: SeriesSignals, template: np.ndarray
    ) -> list[RiskEvent]:
        """Every tick rule over every contract's slices at once: fire where a breach finds the
        rule armed — armed means no event yet, or the contract's last event before was a
        clear (breach and clear exclude each other, spec.check_common) — as ThresholdBank does
        slice by slice; outside a rule's sessions a contract keeps its state."""
        out: list[tuple[int, int, int, RiskEvent]] = []
        bits = np.zeros(sig.rows.shape[0], dtype=np.int64)
        if any(r.sessions for r in self.rules):  # labels hold for whole minutes (SessionGate)
            minutes, inverse = np.unique(sig.sec // 60, return_inverse=True)
            table = np.stack([self.calendar.template_states(float(m * 60))[3]
                              for m in minutes.tolist()])  # fmt: skip
            bits = table[inverse, template[sig.rows]]
        for i, rule in enumerate(self.rules):
            if rule.kind not in TICK_KINDS:
                continue
            keep = rules.applies(i)[sig.rows]
            mask = label_mask(rule.sessions)
            if mask:
                keep &= (bits & mask) != 0
            picks = np.flatnonzero(keep)
            if not picks.size:
                continue
            value = _signal(rule, sig)[picks]
            sign = 1.0 if rule.op.startswith(">") else -1.0
            v = sign * value
            t, r = sign * rule.threshold, sign * rule.rearm_level
            breach = (v > t) if rule.op in (">", "<") else (v >= t)
            ev = np.where(breach, 1, np.where(v < r, -1, 0))  # NaN: neither
            row = sig.rows[picks]
            first = np.ones(picks.size, dtype=bool)
            first[1:] = row[1:] != row[:-1]
            gi = np.arange(picks.size)
            cstart = np.maximum.accumulate(np.where(first, gi, 0))
            seen = np.maximum.accumulate(np.where(ev != 0, gi, -1))
            prior = np.concatenate(([-1], seen[:-1]))
            armed = (prior < cstart) | (ev[np.maximum(prior, 0)] == -1)
            fire = breach & armed
            count = np.cumsum(fire)
            episode = count - (count - fire)[cstart]
            for j in np.flatnonzero(fire).tolist():
                g = int(picks[j])
                name, ts = int(sig.rows[g]), float(sig.ts[g])
                out.append((int(sig.sec[g]), i, name, RiskEvent(
                    rule_id=rule.id, kind=f"market.{rule.kind}", key=self.names[name],
                    severity=rule.severity, value=float(value[j]),
                    threshold=float(rule.threshold), ts=ts, ingress_ts=ts,
                    episode=int(episode[j]), dimension="market",
                    attributes={"product": self.products[name], "price": float(sig.last[g])},
                )))  # fmt: skip
        for g in np.flatnonzero(sig.nonpositive).tolist():
            name, price, ts = int(sig.rows[g]), float(sig.last[g]), float(sig.ts[g])
            out.append((int(sig.sec[g]), len(self.rules), name, RiskEvent(
                rule_id=NONPOSITIVE_RULE, kind=NONPOSITIVE_RULE, key=self.names[name],
                severity="warning", value=price, threshold=0.0, ts=ts, ingress_ts=ts,
                episode=int(sig.nonpositive_episode[g]), dimension="market",
                attributes={"product": self.products[name], "price": price},
            )))  # fmt: skip
        out.sort(key=lambda e: e[:3])  # slice by slice, rule by rule, contract by contract
        return [e for *_, e in out]


_COLUMNS = ("last", "ts", "volume", "open_interest", "bid", "ask", "upper", "lower",
            "pre_settlement")  # fmt: skip


def _signal(rule: Any, sig: SeriesSignals) -> np.ndarray:
    """The series signal a tick kind compares (MarketRuleSet.metric, over every slice)."""
    value = getattr(sig, KIND_OF[rule.kind].signal)
    if isinstance(value, dict):  # realized volatility by window
        value = value[int(rule.param("window_s"))]
    return np.asarray(value, dtype=np.float64)


def _evidence(f: Any, j: int) -> dict[str, Any]:
    """An adaptive kind's score and baseline (rules.engine.evidence), as the feed attaches it."""
    evidence = f.evidence(j)
    return {"evidence": evidence} if evidence is not None else {}
