"""The MarketFeed's statistics and rules over recorded ticks, for the backtest.

Split from rules.engine.backtest (the accounts' replay) because the market side is independent
of the accounts until composite matching (app.backtest even runs it in a second process).
Data time throughout; non-positive prices raise `market.nonpositive_price` as in the feed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rules.contracts import ContractTable, UnknownContract, product_of
from rules.engine.backtest_steps import Ticks
from rules.engine.kinds.market_set import MarketRuleSet
from rules.market_signals import nonpositive_events
from rules.market_stats import MarketStats, StatsParams
from rules.model import RiskEvent
from rules.sessions import SessionCalendar


class MarketReplay:
    """The MarketFeed's statistics and rules over recorded ticks (data time throughout)."""

    def __init__(self, specs: list[Any], table: ContractTable, calendar: SessionCalendar,
                 params: StatsParams) -> None:  # fmt: skip
        self.rules = list(specs)
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


def _evidence(f: Any, j: int) -> dict[str, Any]:
    """An adaptive kind's score and baseline (rules.engine.evidence), as the feed attaches it."""
    evidence = f.evidence(j)
    return {"evidence": evidence} if evidence is not None else {}
