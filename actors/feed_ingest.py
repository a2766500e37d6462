"""The ingest part of a MarketFeed: tick frames in, statistics and market rule events out.

A mixin so the feed's file keeps to its messages. `_on_frame` takes one SUB frame: a malformed
frame, NaN prices and contracts with no spec are rejected (counted, quarantined with the
reason); every good tick is folded into the per-contract statistics (rules.market_stats) and the
market rules evaluated on them (rules.engine.kinds.market_set); the events raised are queued
for the next flush. New contracts get a row on first sight (`_register`).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from actors.feed_group import feed_event
from infra.codec import CodecError, decode_ticks, split_bad_ticks
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

    def _on_frame(self, parts: list[bytes], now: float) -> None:
        self.counts["frames"] += 1
        if len(parts) != 2:
            self._reject("malformed_frame", f"{len(parts)} message parts, expected 2")
            return
        try:
            batch = decode_ticks(parts[1])
        except CodecError as exc:
            self._reject("malformed_frame", str(exc))
            return
        batch, bad = split_bad_ticks(batch)
        if bad.any():
            self._reject(
                "bad_price",
                f"{int(bad.sum())} ticks with NaN/inf last",
                int(bad.sum()),
            )
        if len(batch) == 0:
            return
        rows = self._rows_for(batch.instruments)
        idx = rows[batch.instrument_idx]
        known = idx >= 0
        if not known.all():
            self._reject(
                "unknown_contract",
                f"{int((~known).sum())} ticks of contracts with no spec",
                int((~known).sum()),
            )
        if known.any():
            self._apply(batch, idx, known, now)

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
        self.template = grown(self.template, 0)
        self.stale_s = grown(self.stale_s, np.nan)
        self.owned = grown(self.owned, self.backup is None)
        for sub in self.subscribers:
            sub.pending = grown(sub.pending, False)
            sub.arrival = grown(sub.arrival, np.inf)

    def _apply(self, batch: Any, idx: np.ndarray, known: np.ndarray, now: float) -> None:
        """Fold every tick of a batch into the statistics, then evaluate the market rules."""
        sel = slice(None) if known.all() else np.flatnonzero(known)
        rows = idx[sel]
        ts = batch.exchange_ts[sel]
        ts = np.where(np.isfinite(ts), ts, now)
        with self._lock:
            signals = self.stats_engine.update(
                rows,
                batch.last[sel],
                ts,
                volume=batch.volume[sel],
                open_interest=batch.open_interest[sel],
                bid=batch.bid[sel],
                ask=batch.ask[sel],
                upper=batch.upper_limit[sel],
                lower=batch.lower_limit[sel],
                pre_settlement=batch.pre_settlement[sel],
            )
            touched = np.unique(np.concatenate([s.rows for s in signals]))
            self.arrival_last[touched] = now
            self.last_frame = now
            for sub in self.subscribers:
                sub.pending[touched] = True
                sub.arrival[touched] = np.minimum(sub.arrival[touched], now)
            events = self._evaluate(signals, now, batch.sent_ts)
            events += nonpositive_events(signals, self.names, self.products, now, self.owned)
            self._queue(events)
        self.counts["ticks"] += int(rows.shape[0])
        self._m_ticks.inc(int(rows.shape[0]), tags=self._tags)

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
