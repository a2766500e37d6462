"""The ingest part of a MarketFeed: rounds of tick frames in, statistics and market events out.

A mixin so the feed's file keeps to its messages. `_on_frames` takes every frame the receive
thread queued since the last round, decoded as one columnar batch (actors.feed_decode):
malformed frames, NaN prices, contracts with no spec and ticks stamped in the future (beyond
`market.future_tolerance_s`) are rejected alone (counted, quarantined with a one-line reason);
every good tick is folded into the per-contract statistics (rules.market_stats) in one
vectorized update and the market rules evaluated on them (rules.engine.kinds.market_set); the
events raised are queued for the next flush. Under a flood a round holds many frames: their
statistics are still computed on every tick, and the fan-out sends only the latest price per
contract (`ticks_coalesced` counts the ticks whose price never went out alone). New contracts
get a row on first sight (`_register`).
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

import numpy as np

from actors.feed_decode import Round, decode_round
from actors.feed_group import feed_event
from rules.contracts import UnknownContract, product_of
from rules.engine.kinds.market_set import Fired
from rules.market_signals import nonpositive_events
from rules.market_stats import SliceSignals
from rules.model import RiskEvent

MAX_PENDING_EVENTS = 20_000


class FeedIngest:
    """Mixin: needs the feed's columns (`index`, `names`, `products`, `arrival_last`,
    `first_arrival`, `template`, `stale_s`, `owned`, `subscribers`), `stats_engine`, `rules`,
    `table`, `calendar`, `shift`, `backup`, `correlator`, `_lock`, `_events`, its metrics, and
    the shell's `counts`/`reject`."""

    def _reject(self, reason: str, detail: str, n: int = 1) -> None:
        self.counts[f"rejected_{reason}"] += n
        self.reject(reason, detail[:300])
        self._m_bad.inc(n, tags={**self._tags, "reason": reason})

    def _on_frames(self, frames: list[tuple[float, list[bytes]]]) -> None:
        """One round of frames off the socket, `(arrival, parts)` each, in arrival order.

        Decoded as one columnar batch (actors.feed_decode); a bad frame, a NaN price, a
        contract with no spec or a tick from the future is rejected alone, counted and
        quarantined with the reason; the rest is folded in one statistics update.
        """
        self.counts["frames"] += len(frames)
        rnd = decode_round(frames)
        for reason, detail in rnd.rejects:
            self._reject(reason, detail)
        if len(rnd) == 0:
            return
        bad = ~np.isfinite(rnd.cols["last"])
        if bad.any():
            self._reject("bad_price", f"{int(bad.sum())} ticks with NaN/inf last", int(bad.sum()))
            rnd = rnd.take(~bad)
        if len(rnd) == 0:
            return
        idx = self._rows_for(rnd.names)[rnd.name_start + rnd.local_idx]
        known = idx >= 0
        if not known.all():
            unknown = int((~known).sum())
            self._reject("unknown_contract", f"{unknown} ticks of contracts with no spec", unknown)
            rnd, idx = rnd.take(known), idx[known]
        future = self._future(rnd, idx)
        if future.any():
            rnd, idx = rnd.take(~future), idx[~future]
        if len(rnd):
            self._apply(rnd, idx)

    def _future(self, rnd: Round, idx: np.ndarray) -> np.ndarray:
        """Ticks stamped further ahead of the feed's clock than `future_tolerance_s`: they
        would move the statistics clock (and every later tick's bar) for good."""
        tolerance = self.settings.market.future_tolerance_s
        # The feed's clock is the wall clock at arrival; a source on the demo's shifted session
        # clock may stamp ahead of it by the shift, so a positive shift widens the window.
        ahead = rnd.cols["exchange_ts"] - (rnd.arrival + max(0.0, self.shift))
        with np.errstate(invalid="ignore"):
            future = ahead > tolerance  # NaN stamps take the arrival time later: not future
        if future.any():
            k = int(np.flatnonzero(future)[0])
            ts = float(rnd.cols["exchange_ts"][k])
            when = (
                datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")
                if abs(ts) < 1e11 else f"{ts:g}"
            )  # fmt: skip
            self._reject(
                "future_ts",
                f"{int(future.sum())} ticks stamped ahead of the feed clock, first "
                f"{self.names[int(idx[k])]} at {when}, {float(ahead[k]):.1f} s ahead "
                f"(tolerance {tolerance:g} s)",
                int(future.sum()),
            )
        return future

    def _rows_for(self, instruments: list[str]) -> np.ndarray:
        rows = np.empty(len(instruments), dtype=np.int64)
        for i, name in enumerate(instruments):
            row = self.index.get(name)
            if row is None:
                row = self._register(name)
            rows[i] = row
        return rows

    def _register(self, name: str) -> int:
        if name in self.unknown:
            return -1
        try:
            spec = self.table.spec(product_of(name))
        except (UnknownContract, ValueError) as exc:
            self.unknown.add(name)
            self.reject("unknown_contract", str(exc))
            return -1
        with self._lock:
            row = len(self.names)
            if row >= self.arrival_last.shape[0]:
                self._grow(2 * self.arrival_last.shape[0])
            self.stats_engine.add_rows(np.array([spec.tick_size]), np.array([spec.limit_rate]))
            self.rules.add_rows([name], [spec.product])
            self.template[row] = self.calendar.template(spec.product)
            override = self.stale_overrides.get(name, self.stale_overrides.get(spec.product))
            self.stale_s[row] = np.nan if override is None else float(override)
            self.owned[row] = self.backup is None
            self.first_arrival[row] = time.time()
            self.index[name] = row
            self.names.append(name)
            self.products.append(spec.product)
        return row

    def _grow(self, cap: int) -> None:
        def grown(arr: np.ndarray, fill: Any) -> np.ndarray:
            new = np.full(cap, fill, dtype=arr.dtype)
            new[: arr.shape[0]] = arr
            return new

        self.arrival_last = grown(self.arrival_last, np.nan)
        self.first_arrival = grown(self.first_arrival, np.nan)
        self.price_arrival = grown(self.price_arrival, np.nan)
        self.price_sent = grown(self.price_sent, np.nan)
        self.template = grown(self.template, 0)
        self.stale_s = grown(self.stale_s, np.nan)
        self.owned = grown(self.owned, self.backup is None)
        for sub in self.subscribers:
            sub.pending = grown(sub.pending, False)
            sub.arrival = grown(sub.arrival, np.inf)

    def _apply(self, rnd: Round, rows: np.ndarray) -> None:
        """Fold every tick of a round into the statistics, then evaluate the market rules."""
        c = rnd.cols
        ts = np.where(np.isfinite(c["exchange_ts"]), c["exchange_ts"], rnd.arrival)
        n = int(rows.shape[0])
        # Arrival is non-decreasing within a round: per contract, the first tick is the
        # earliest waiting and the last tick the one whose price is now the last price.
        touched, first = np.unique(rows, return_index=True)
        _, from_end = np.unique(rows[::-1], return_index=True)
        earliest, latest = rnd.arrival[first], rnd.arrival[n - 1 - from_end]
        ingress = float(rnd.arrival[0])
        with self._lock:
            signals = self.stats_engine.update(
                rows, c["last"], ts, volume=c["volume"], open_interest=c["open_interest"],
                bid=c["bid"], ask=c["ask"], upper=c["upper_limit"], lower=c["lower_limit"],
                pre_settlement=c["pre_settlement"],
            )  # fmt: skip
            self.arrival_last[touched] = latest
            self.last_frame = float(rnd.arrival[-1])
            for sub in self.subscribers:
                sub.pending[touched] = True
                sub.arrival[touched] = np.minimum(sub.arrival[touched], earliest)
            events = self._evaluate(signals, ingress, float(rnd.sent_ts[-1]))
            events += nonpositive_events(signals, self.names, self.products, ingress, self.owned)
            self._queue(events)
        coalesced = n - int(touched.shape[0])  # folded, but only the latest price goes out
        self.counts["ticks"] += n
        self.counts["ticks_coalesced"] += coalesced
        self._m_ticks.inc(n, tags=self._tags)
        if coalesced:
            self._m_coalesced.inc(coalesced, tags=self._tags)

    def _evaluate(self, signals: list[SliceSignals], now: float, sent_ts: float) -> list[RiskEvent]:
        out: list[RiskEvent] = []
        for sig in signals:
            bits = np.zeros(sig.rows.shape[0], dtype=np.int64)
            if self._session_rules:
                bits = self.calendar.template_states(sig.second + self.shift)[3][
                    self.template[sig.rows]
                ]
            for fired in self.rules.on_slice(sig, bits):
                out.extend(self._tick_events(fired, sig, now, sent_ts))
        return out

    def _tick_events(
        self, fired: Fired, sig: SliceSignals, ingress: float, sent_ts: float
    ) -> list[RiskEvent]:
        rule = fired.rule
        out = []
        for j in range(fired.rows.shape[0]):
            row, pick = int(fired.rows[j]), int(fired.picks[j])
            if not self.owned[row]:
                continue
            attrs: dict[str, Any] = {
                "feed": self.name,
                "product": self.products[row],
                "price": float(sig.last[pick]),
                "exchange_ts": float(sig.ts[pick]),
                "sent_ts": float(sent_ts),
            }
            if rule.kind == "jump":
                attrs["move"] = float(sig.jump_move[pick])
                attrs["window_s"] = self.stats_engine.p.jump_window_s
            elif rule.kind in ("near_limit", "limit_locked"):
                attrs["upper_limit"] = float(self.stats_engine.upper[row])
                attrs["lower_limit"] = float(self.stats_engine.lower[row])
                attrs["side"] = int(sig.limit_side[pick])
            elif rule.kind == "volatility":
                attrs["window_s"] = int(rule.param("window_s"))
            evidence = fired.evidence(j)  # adaptive kinds: score and baseline
            if evidence is not None:
                attrs["evidence"] = evidence
            out.append(
                feed_event(rule, self.names[row], float(fired.values[j]), int(fired.episodes[j]),
                           ingress, attrs)
            )  # fmt: skip
        return out

    def _queue(self, events: list[RiskEvent]) -> None:
        if not events:
            return
        self.counts["events"] += len(events)
        self._m_events.inc(len(events), tags=self._tags)
        if self.correlator is None:
            return
        self._events.extend(events)
        if len(self._events) > MAX_PENDING_EVENTS:
            dropped = len(self._events) - MAX_PENDING_EVENTS
            del self._events[:dropped]
            self.counts["events_dropped"] += dropped
