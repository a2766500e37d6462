"""The backtest: history through the same rules/ code that runs live.

Ticks (columns, time-ordered) drive the live arithmetic: every `step_s` of data time (default
0.5 s, CTP's snapshot cadence) the latest price of each held contract is set on an
`AccountBook` (set_prices), the accounts holding a changed contract are re-marked, and the
account rules are evaluated by the same `RuleEngine` an AccountShard runs — exactly what a
shard does with each coalesced PriceUpdate. Market rules (volatility, jump) run through
rules.market_stats and the market kinds (rules.engine.kinds.market_set) as in the MarketFeed; composite rules through the
CompositeMatcher and alert hygiene through the Correlator's pipeline (minus silences, which are
an operator's, not a rule's). Alert ids, episodes and values are the live ones.

Speed (`screen=True`, the default): most of the time most accounts are nowhere near a line. The
steps are cut into blocks (at most `block_steps`, cut at change-rule window edges and where a
new settlement price changes the cost factors); per block each held contract's price range is
known, rules.engine.bounds turns it into a range per account figure, and each rule group says
which accounts could fire or re-arm within it. Only those are marked and evaluated step by
step — with the live code; the others provably change no rule state. `screen=False` runs every
step for every re-marked account; a test holds the two to identical output on real data.
Limit-locked metrics (locked_contracts, ...) have no price bound: they run step by step on holders
of a contract that reaches a limit in the block.

Multi-day ticks: at the first step of each new trading day (night trading belongs to the next
day) the day before is settled at each contract's last price of that day — the price the book
carries then (a file's settlement column is not read) — through AccountBook.apply_settlement as a
shard applies one from the account bus; every account is judged again.

Pure: numpy and stdlib; files are read and written by app.backtest.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rules.book import ACCOUNT_COLUMNS, AccountBook
from rules.contracts import ContractTable
from rules.engine.backtest_alerts import account_events, alert_record, alerts_of, beijing_iso
from rules.engine.backtest_market import MarketReplay
from rules.engine.backtest_steps import (
    Steps,
    Ticks,
    _holders,
    coalesce,
    limit_candidates,
    settlement_steps,
    unpriced_at_cost,
)
from rules.engine.bounds import figure_bounds, figure_path
from rules.engine.evaluator import RuleEngine
from rules.engine.kinds import kind_of
from rules.engine.kinds.change import BEIJING_S, ChangeRule
from rules.engine.kinds.composite import CompositeMatcher
from rules.engine.kinds.session import SessionGate
from rules.engine.metrics import DERIVED_METRICS, derived_metric
from rules.engine.spec import RuleSet
from rules.engine.template import PLACES, Fired
from rules.market_stats import StatsParams
from rules.model import RiskEvent
from rules.sessions import SessionCalendar

STEPWISE_METRICS = frozenset({"locked_contracts", "locked_margin", "locked_risk_degree"})

__all__ = ["Backtest", "MarketReplay", "Result", "Steps", "Ticks", "alert_record", "beijing_iso",
           "coalesce"]  # fmt: skip


@dataclass
class Result:
    alerts: list[dict[str, Any]]
    stats: dict[str, Any] = field(default_factory=dict)


ORDER_STREAM = ("behaviour", "order_behaviour_anomaly", "anomaly")  # kinds fed by order records


class Backtest:
    def __init__(
        self,
        book: AccountBook,
        ruleset: RuleSet,
        table: ContractTable,
        calendar: SessionCalendar | None = None,
        step_s: float = 0.5,
        block_steps: int = 128,
        screen: bool = True,
        stats_params: StatsParams | None = None,
    ) -> None:
        self.book = book
        self.ruleset = ruleset
        self.table = table
        self.calendar = calendar or SessionCalendar.from_table(table)
        self.step_s = step_s
        self.block_steps = block_steps
        self.screen = screen
        self.stats_params = stats_params or StatsParams()
        placed = {p: [r for r in ruleset.everything if kind_of(r.kind).place(r) == p]
                  for p in PLACES}  # fmt: skip
        self.engine = RuleEngine(placed["account"], SessionGate(self.calendar))
        self.market_specs = placed["market"]
        self.matcher = CompositeMatcher(placed["correlator"])
        # no roll-ups, exposure books or order stream in a tick replay: these rules wait
        self.not_replayed = sorted([r.id for p in ("transfers", "hierarchy", "books")
                                    for r in placed[p]]
                                   + [r.id for r in placed["account"] if r.kind in ORDER_STREAM])  # fmt: skip
        self.counts: dict[str, int] = {"account_steps_exact": 0, "blocks": 0, "blocks_exact": 0}
        self._holders = _holders(book)
        self._metrics = {g.metric for g in self.engine.groups}
        # Limit-locked holdings move with the limit state, not linearly with prices: no bound,
        # so the screen runs these groups step by step on the accounts that could lock.
        self.locked_groups = [g for g in self.engine.groups if g.metric in STEPWISE_METRICS]
        self._settle_at: dict[int, tuple[str, str, float]] = {}
        self.settlements: list[dict[str, Any]] = []

    # ---- sources --------------------------------------------------------------------------

    def _column(self, metric: str, rows: np.ndarray) -> np.ndarray:
        if metric in ACCOUNT_COLUMNS:
            return self.book.acc[metric][rows]
        if metric in DERIVED_METRICS:
            return derived_metric(metric, self.book.figures, rows)
        return getattr(self.book.figures, metric)[rows]

    # ---- run ------------------------------------------------------------------------------

    def run(self, ticks: Ticks, market: Any = None) -> Result:
        """Replay `ticks`; `market` are the market events if a caller computed them already
        (app.backtest does, in a second process, while this one replays the accounts)."""
        t0 = time.perf_counter()
        book = self.book
        self.engine.resize(book.n_accounts)
        steps = coalesce(ticks, book, self.step_s)
        self._settle_at = settlement_steps(steps)
        t1 = time.perf_counter()
        fired: list[tuple[float, Fired]] = []
        if self.screen:
            self._screened(steps, fired)
        else:
            self._stepwise(steps, fired)
        t2 = time.perf_counter()
        if market is None:
            market = self.market_events(ticks)
        elif hasattr(market, "result"):  # computed by another process (app.backtest)
            deferred = market
            try:
                market = deferred.result.get()
            finally:
                deferred.pool.close()
        t3 = time.perf_counter()
        events = self._account_events(fired) + market
        events.sort(key=_order)
        events += self.matcher.on_events(events)
        events.sort(key=_order)
        alerts = self._alerts(events)
        t4 = time.perf_counter()
        stats = {
            "ticks": len(ticks),
            "steps": len(steps),
            "price_updates": int(steps.contract.shape[0]),
            "accounts": int(book.active[: book.n_accounts].sum()),
            "positions": int(book.n_positions),
            "events": len(events),
            **self.counts,
            "not_replayed": self.not_replayed,
            "settlements": [s["trading_day"] for s in self.settlements],
            "seconds": {"coalesce": t1 - t0, "accounts": t2 - t1, "market": t3 - t2,
                        "alerts": t4 - t3},
        }  # fmt: skip
        return Result(alerts, stats)

    def _apply(self, steps: Steps, a: int, b: int) -> np.ndarray:
        names = self.book.contracts.names
        return self.book.set_prices([names[c] for c in steps.contract[a:b].tolist()],
                                    steps.last[a:b], steps.upper[a:b], steps.lower[a:b],
                                    steps.pre[a:b])  # fmt: skip

    def _universe(self) -> np.ndarray:
        return np.flatnonzero(self.book.active[: self.book.n_accounts])

    def _stepwise(self, steps: Steps, fired: list[tuple[float, Fired]]) -> None:
        """The live path: every step re-marks the holders of changed contracts (everyone
        after a settlement, as a shard does when the settlement arrives)."""
        for k in range(len(steps)):
            settled = self._settle(k)
            contracts = self._apply(steps, steps.start[k], steps.start[k + 1])
            rows = self.book.mark_contracts(contracts)
            if settled:
                self.book.mark()
                rows = self._universe()
            self.counts["account_steps_exact"] += int(rows.size)
            ts = float(steps.ts[k])
            got = self.engine.evaluate(self._column, rows, ts, universe=self._universe)
            fired.extend((ts, f) for f in got)

    def _settle(self, k: int) -> bool:
        """At the first step of a new trading day, settle the day before at each contract's
        last price (what the book carries now): every account rolls (rules.book)."""
        days = self._settle_at.get(k)
        if days is None:
            return False
        last = unpriced_at_cost(self.book)
        names = self.book.contracts.names
        prices = {names[c]: float(last[c]) for c in np.flatnonzero(np.isfinite(last)).tolist()}
        rec = {"type": "settlement", "trading_day": days[0], "next_trading_day": days[1],
               "prices": prices, "ts": days[2]}  # fmt: skip
        self.book.apply_settlement(rec)
        self.settlements.append(rec)
        return True

    def _edges(self, steps: Steps) -> list[list[Any]]:
        """Per step, the groups that evaluate every account there (RuleEngine.edge), found
        with arrays: only session and window changes make edges after the first step."""
        n = len(steps)
        out: list[list[Any]] = [[] for _ in range(n)]
        if not n:
            return out
        out[0] = list(self.engine.groups)
        for k in self._settle_at:  # after a settlement every account is judged again
            out[k] = list(self.engine.groups)
        gate = self.engine.gate
        for g in self.engine.groups:
            hit = np.zeros(n, dtype=bool)
            if g.sessions:
                live = np.array([gate.active(g.sessions, t) for t in steps.ts.tolist()])
                hit[1:] |= live[1:] & ~live[:-1]
            if isinstance(g, ChangeRule):
                k = np.floor((steps.ts + BEIJING_S) / g.window)
                hit[1:] |= k[1:] != k[:-1]
            for i in np.flatnonzero(hit[1:]) + 1:
                out[i].append(g)
        return out

    def _blocks(self, steps: Steps, edges: list[list[Any]]) -> list[tuple[int, int]]:
        n = len(steps)
        cut = np.zeros(n, dtype=bool)
        if n:
            cut |= steps.structural
            cut[list(self._settle_at)] = True
            cut |= np.array([bool(e) for e in edges])
            cut[:: self.block_steps] = True
        starts = np.flatnonzero(cut).tolist()
        return list(zip(starts, [*starts[1:], n], strict=True))

    def _screened(self, steps: Steps, fired: list[tuple[float, Fired]]) -> None:
        book = self.book
        edges = self._edges(steps)
        for k0, k1 in self._blocks(steps, edges):
            self.counts["blocks"] += 1
            a0, a1 = int(steps.start[k0]), int(steps.start[k1])
            ts0 = float(steps.ts[k0])
            if edges[k0]:
                if any(g.rolls(float(steps.ts[k0 - 1]) if k0 else None, ts0) for g in edges[k0]):
                    # a baseline window closes: its closes are every key's value now
                    book.mark()
                    if k0:
                        self.engine.observe(self._column, self._universe(), float(steps.ts[k0 - 1]))
                self._settle(k0)
                self._apply(steps, a0, int(steps.start[k0 + 1]))
                book.mark()
                everyone = self._universe()
                self.counts["account_steps_exact"] += int(everyone.size)
                for g in edges[k0]:
                    g.last_ts = ts0
                    got = self.engine.evaluate_group(g, self._column, everyone, ts0)
                    fired.extend((ts0, f) for f in got)
            elif self._settle(k0) or steps.structural[k0]:
                self._apply(steps, a0, int(steps.start[k0 + 1]))
            per_group = self._uncertain(steps, k0, k1, a0, a1)
            if per_group:
                self.counts["blocks_exact"] += 1
                self._exact(steps, k0, k1, a0, a1, per_group, fired)
            self._locked_steps(steps, k0, k1, fired)
            self._apply_final(steps, a0, a1)

    def _locked_steps(
        self, steps: Steps, k0: int, k1: int, fired: list[tuple[float, Fired]]
    ) -> None:
        """Limit-locked groups, live step by step on the holders of a contract whose price
        reaches a limit within the block (the others hold nothing locked all along)."""
        if not self.locked_groups:
            return
        cand = limit_candidates(self.book, self._holders, steps, k0, k1)
        for k in range(k0, k1) if cand.size else ():
            self._apply(steps, steps.start[k], steps.start[k + 1])
            self.book.mark_accounts(cand)
            ts = float(steps.ts[k])
            for g in self.locked_groups:
                fired.extend((ts, f) for f in self.engine.evaluate_group(g, self._column, cand, ts))

    def _exact(self, steps: Steps, k0: int, k1: int, a0: int, a1: int,
               per_group: list[tuple[Any, np.ndarray]], fired: list[tuple[float, Fired]]) -> None:  # fmt: skip
        """Step-exact figures of the uncertain accounts over the block, evaluated per group."""
        book = self.book
        rows = np.unique(np.concatenate([r for _, r in per_group]))
        s = k1 - k0
        carried = book.contracts.last[: len(book.contracts)]
        upd = np.full((s, carried.shape[0]), np.nan)
        local_step = np.repeat(np.arange(s), np.diff(steps.start[k0 : k1 + 1]))
        upd[local_step, steps.contract[a0:a1]] = steps.last[a0:a1]
        seen = np.where(np.isnan(upd), -1, np.arange(s)[:, None])
        last = np.maximum.accumulate(seen, axis=0)
        cols = np.arange(carried.shape[0])
        prices = np.where(last >= 0, upd[np.maximum(last, 0), cols], carried[None, :])
        metrics = {g.metric for g, _ in per_group}
        path = figure_path(book, rows, prices, metrics)
        self.counts["account_steps_exact"] += int(rows.size * s)
        ts = steps.ts[k0:k1]
        where = {int(r): i for i, r in enumerate(rows.tolist())}
        for g, g_rows in per_group:
            live = (
                np.array([self.engine.gate.active(g.sessions, float(t)) for t in ts])
                if g.sessions
                else np.ones(s, bool)
            )
            if not live.any():
                continue
            cols_g = np.array([where[int(r)] for r in g_rows.tolist()], dtype=np.int64)
            if g.metric in path:
                values = path[g.metric][:, cols_g]
            else:
                values = np.broadcast_to(self._column(g.metric, g_rows), (s, g_rows.size))
            idx = np.flatnonzero(live)
            for step, f in g.evaluate_path(np.ascontiguousarray(values[idx]), g_rows, idx, ts[idx]):
                fired.append((float(ts[step]), f))

    def _apply_final(self, steps: Steps, a0: int, a1: int) -> None:
        """The block's last price of each contract (the state the next block starts from)."""
        if a1 <= a0:
            return
        c = steps.contract[a0:a1]
        _, first_rev = np.unique(c[::-1], return_index=True)
        pick = a0 + (a1 - a0 - 1 - first_rev)
        names = self.book.contracts.names
        self.book.set_prices([names[x] for x in steps.contract[pick].tolist()], steps.last[pick],
                             steps.upper[pick], steps.lower[pick], steps.pre[pick])  # fmt: skip

    def _uncertain(
        self, steps: Steps, k0: int, k1: int, a0: int, a1: int
    ) -> list[tuple[Any, np.ndarray]]:
        """Per rule group, the accounts it could fire or re-arm for within the block."""
        book = self.book
        c = steps.contract[a0:a1]
        carried = book.contracts.last[: len(book.contracts)]
        p_lo, p_hi = carried.copy(), carried.copy()
        np.fmin.at(p_lo, c, steps.last[a0:a1])
        np.fmax.at(p_hi, c, steps.last[a0:a1])
        cand = self._holders_of(np.unique(c))
        cand = cand[book.active[cand]]
        if cand.size == 0 or not self.engine.groups:
            return []
        bounds = figure_bounds(book, p_lo, p_hi, np.isnan(carried), cand, self._metrics)
        times = steps.ts[k0:k1]
        out = []
        for g in self.engine.groups:
            if g.sessions and not any(self.engine.gate.active(g.sessions, float(t)) for t in times):
                continue
            if g in self.locked_groups:
                continue  # step by step in _locked_steps
            if g.metric not in bounds:
                # account columns (no transfers in a replay) and behaviour counts (no order
                # stream) stand still: only a new window moves them, and an edge evaluated that
                continue
            lo, hi = bounds[g.metric]
            hit = g.uncertain(lo, hi, cand, float(times[0]))
            if hit.any():
                out.append((g, cand[hit]))
        return out

    def _holders_of(self, contracts: np.ndarray) -> np.ndarray:
        starts, accounts = self._holders
        mask = np.zeros(self.book.n_accounts, dtype=bool)
        for c in contracts.tolist():
            if c + 1 < len(starts):
                mask[accounts[starts[c] : starts[c + 1]]] = True
        return np.flatnonzero(mask)

    # ---- events and alerts ----------------------------------------------------------------

    def _account_events(self, fired: list[tuple[float, Fired]]) -> list[RiskEvent]:
        return account_events(self.book, fired)

    def market_events(self, ticks: Ticks) -> list[RiskEvent]:
        """Market rules over every tick: rules.market_stats and the market kinds, as a feed."""
        if not self.market_specs or not len(ticks):
            return []
        return MarketReplay(self.market_specs, self.table, self.calendar, self.stats_params).run(
            ticks
        )

    def _alerts(self, events: Iterable[RiskEvent]) -> list[dict[str, Any]]:
        return alerts_of(self.ruleset, events)


def _order(e: RiskEvent) -> tuple[float, str, str, str]:
    return (e.ts, e.dimension, e.rule_id, e.key)
