"""MarketFeed actor: one per market-data endpoint.

A receive thread takes every tick frame off its ZeroMQ SUB socket, rejects what is malformed
(counted and quarantined with the reason), and folds every good tick into per-contract market
statistics (rules.market_stats: OHLC bars, realized volatility, jumps, limits, volume and OI
spikes) before evaluating the market rules on them (rules.engine.kinds.market_set). A flush
thread, every `flush_ms`, pushes one PriceUpdate per subscriber with the latest price of every
contract that changed — never one call per tick; a subscriber still busy with the previous
update is skipped this round and gets the coalesced changes next time — and sends the market
RiskEvents raised since the last flush to the Correlator in one call. Statistics never coalesce:
only the fan-out does.

Every `check_ms` the flush thread also looks for stale contracts (a live contract silent for
longer than its threshold within its session), and for a silent feed (one alert for the whole
feed, which then stands in for the per-contract alerts). A backup feed (see actors.feed_group)
polls its primary there and takes over the contracts the primary has gone stale on.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import ray
import zmq

from actors.common import ACTOR_OPTIONS, BoundedSender
from actors.context import Context
from actors.feed_group import BackupRole, feed_event
from actors.rule_host import bundle_of
from infra import metrics
from infra.codec import CodecError, decode_ticks, split_bad_ticks
from infra.config import MarketConfig
from infra.config.legacy import market_rule_spec
from infra.stats import LatencyRing
from rules.contracts import UnknownContract, product_of
from rules.engine.kinds import kind_of
from rules.engine.kinds.market_set import Fired, MarketRuleSet, SilenceState
from rules.market_signals import nonpositive_events
from rules.market_stats import MarketStats, SliceSignals, StatsParams
from rules.model import PriceUpdate, RiskEvent

QUARANTINE_SIZE = 200
MAX_PENDING_EVENTS = 20_000


class _Subscriber:
    def __init__(self, handle: Any, method: str, capacity: int, min_interval_s: float) -> None:
        self.handle = handle
        self.method = method
        self.min_interval_s = min_interval_s  # slow consumers (books) need no 50 ms cadence
        self.last_sent = 0.0
        self.sender = BoundedSender(max_in_flight=1)
        self.pending = np.zeros(capacity, dtype=bool)
        self.arrival = np.full(capacity, np.inf)


@dataclass(frozen=True)
class MarketFeedSettings:
    name: str
    endpoint: str  # the market PUB to subscribe to
    flush_ms: int = 50  # the most a price waits before subscribers see it
    topic: bytes = b"T"
    role: str = "primary"  # or "backup": takes a contract over when the primary goes stale
    market: MarketConfig = MarketConfig()  # config `[market]`: stats, rules, stale, takeover


@ray.remote(**ACTOR_OPTIONS)
class MarketFeed:
    def __init__(
        self,
        settings: MarketFeedSettings,
        *,
        context: Context | None = None,
        subscribers: list[tuple[Any, str, float]] | None = None,
        correlator: Any = None,
        primary: Any = None,
        rules: dict[str, Any] | None = None,
    ) -> None:
        market, name, role, topic = settings.market, settings.name, settings.role, settings.topic
        self.settings = settings
        # The session clock: wall time, or (demos and tests outside trading hours) wall time
        # shifted so that it started at `session_clock_start` (the Context carries the shift).
        self.context = context if context is not None else Context.of_market(market)
        self.name = name
        self.endpoint = settings.endpoint
        self.flush_s = settings.flush_ms / 1000
        self.check_s = market.check_ms / 1000
        self.role = role
        self.correlator = correlator
        self.table = self.context.contracts
        self.calendar = self.context.calendar
        self.shift = self.context.clock_shift_s
        self.stats_engine = MarketStats(StatsParams(**dataclasses.asdict(market.stats)))
        # The market rules of a rule-set bundle (what every actor is given); without one,
        # those of the market config (its deprecated `[[market.rules]]`, or the defaults).
        self.rules = MarketRuleSet((), market.stats.vol_windows_s)
        self.silence: SilenceState | None = None
        self._session_rules = False
        specs = (
            _market_specs(rules) if rules is not None
            else [market_rule_spec(r) for r in market.rules]
        )  # fmt: skip
        self.stale_overrides = dict(market.stale_s_by_product)
        self.index: dict[str, int] = {}
        self.names: list[str] = []
        self.products: list[str] = []
        self._install(specs)
        cap = 256
        self.arrival_last = np.full(cap, np.nan)  # wall time of each contract's last tick
        self.first_arrival = np.full(cap, np.nan)  # ... and of its first
        self.template = np.zeros(cap, dtype=np.int64)  # session schedule of each contract
        self.stale_s = np.full(cap, np.nan)  # per-contract stale threshold override
        self.owned = np.ones(cap, dtype=bool)  # a standby backup owns nothing
        self.subscribers = [_Subscriber(h, m, cap, i) for h, m, i in (subscribers or [])]
        self.backup = BackupRole(primary, market.takeover_s) if role == "backup" else None
        if self.backup is not None:
            self.owned[:] = False
        self.unknown: set[str] = set()
        self.quarantine: collections.deque[dict[str, Any]] = collections.deque(
            maxlen=QUARANTINE_SIZE
        )
        self.counts: collections.Counter = collections.Counter(checks=0, events=0, ticks=0)
        self.seq = 0
        self.started = time.time()
        self.last_frame = 0.0
        self._events: list[RiskEvent] = []
        self._event_sender = BoundedSender(max_in_flight=2)
        self.event_latency = LatencyRing(20_000)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._m_ticks = metrics.counter("ticks_total", "ticks accepted by market feeds")
        self._m_bad = metrics.counter(
            "bad_frames_total", "rejected frames or ticks", tag_keys=("actor", "reason")
        )
        self._m_events = metrics.counter("market_events_total", "market risk events raised")
        self._tags = {"actor": f"MarketFeed.{name}"}
        self._ctx = zmq.Context.instance()
        self._recv_thread = threading.Thread(target=self._recv_loop, args=(topic,), daemon=True)
        self._flush_thread = threading.Thread(target=self._flush_loop, daemon=True)
        self._recv_thread.start()
        self._flush_thread.start()

    # ---- receive --------------------------------------------------------------------------

    def _recv_loop(self, topic: bytes) -> None:
        sock = self._ctx.socket(zmq.SUB)
        sock.setsockopt(zmq.RCVHWM, 100_000)
        sock.setsockopt(zmq.SUBSCRIBE, topic)
        sock.connect(self.endpoint)
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        try:
            while not self._stop.is_set():
                if not poller.poll(100):
                    continue
                while True:
                    try:
                        parts = sock.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    try:
                        self._on_frame(parts, time.time())
                    except Exception as exc:  # a bug on one frame must not stop the feed
                        self._reject("internal_error", f"{type(exc).__name__}: {exc}")
        finally:
            sock.close(linger=0)

    def _reject(self, reason: str, detail: str, n: int = 1) -> None:
        self.counts[f"rejected_{reason}"] += n
        self.quarantine.append({"ts": time.time(), "reason": reason, "detail": detail[:300]})
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
            self.quarantine.append(
                {"ts": time.time(), "reason": "unknown_contract", "detail": str(exc)}
            )
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

    # ---- flush and checks -----------------------------------------------------------------

    def _flush_loop(self) -> None:
        next_check = time.monotonic() + self.check_s
        while not self._stop.wait(self.flush_s):
            try:
                if time.monotonic() >= next_check:
                    next_check = time.monotonic() + self.check_s
                    self.check()
                self.flush()
            except Exception as exc:  # keep flushing whatever one round did
                self._reject("internal_error", f"flush: {type(exc).__name__}: {exc}")

    def flush(self) -> int:
        """Send each free subscriber the contracts changed since its last update, and the
        Correlator the events raised since the last flush."""
        sent = 0
        now = time.time()
        for sub in self.subscribers:
            if now - sub.last_sent < sub.min_interval_s:
                continue
            if sub.sender.busy():
                self.counts["coalesced"] += 1
                continue
            with self._lock:
                n = len(self.names)
                rows = np.flatnonzero(sub.pending[:n] & self.owned[:n])
                if rows.size == 0:
                    continue
                self.seq += 1
                st = self.stats_engine
                update = PriceUpdate(
                    instruments=[self.names[r] for r in rows],
                    last=st.last[rows].copy(),
                    upper_limit=st.upper[rows].copy(),
                    lower_limit=st.lower[rows].copy(),
                    pre_settlement=st.pre_settlement[rows].copy(),
                    arrival_ts=sub.arrival[rows].copy(),
                    seq=self.seq,
                    feed=self.name,
                    open_interest=st.open_interest[rows].copy(),
                )
                sub.pending[rows] = False
                sub.arrival[rows] = np.inf
            sub.sender.send(getattr(sub.handle, sub.method).remote(update))
            sub.last_sent = now
            sent += 1
        self.counts["updates_sent"] += sent
        self._flush_events(now)
        return sent

    def _flush_events(self, now: float) -> None:
        if not self._events or self._event_sender.busy():
            return
        with self._lock:
            batch, self._events = self._events, []
        self._event_sender.send(self.correlator.on_events.remote(batch))
        self.event_latency.add([(now - e.ingress_ts) * 1000 for e in batch])
        self.counts["event_batches"] += 1

    def check(self) -> None:
        """Backup takeover, whole-feed silence, then per-contract staleness."""
        now = time.time()
        events: list[RiskEvent] = []
        self.counts["checks"] += 1
        with self._lock:
            n = len(self.names)
            if self.backup is not None:
                events += self.backup.poll(self, now)
            inside, start, previous, _bits = self.calendar.template_states(now + self.shift)
            tmpl = self.template[:n]
            in_session = inside[tmpl]
            with np.errstate(invalid="ignore"):
                live = self.arrival_last[:n] >= previous[tmpl] - self.shift
            watched = bool((in_session & live).any()) if n else bool(inside.any())
            if self.silence is not None:
                silent_for = now - (self.last_frame or self.started)
                if self.silence.check(silent_for, watched):
                    events.append(self._silence_event(silent_for, now, n))
                if not self.silence.armed:  # one alert for the feed stands for its contracts
                    self._queue(events)
                    return
            eligible = in_session & live & self.owned[:n]
            for i in self.rules.of_kind("stale"):
                rule = self.rules.rules[i]
                rows = np.flatnonzero(eligible & self.rules.applies(i)[:n])
                if rows.size == 0:
                    continue
                since = np.fmax(self.arrival_last[rows], start[tmpl[rows]] - self.shift)
                age = now - since
                own = self.stale_s[rows]
                scale = np.where(np.isnan(own), 1.0, rule.threshold / own)
                fired = self.rules.on_values(i, rows, age, scale)
                if fired is not None:
                    events += self._stale_events(fired, now)
            self._queue(events)

    def _stale_events(self, fired: Fired, now: float) -> list[RiskEvent]:
        out = []
        for row, value, episode in zip(
            fired.rows.tolist(), fired.values.tolist(), fired.episodes.tolist(), strict=True
        ):
            own = self.stale_s[row]
            attrs = {
                "feed": self.name,
                "product": self.products[row],
                "last_tick_ts": float(self.arrival_last[row]),
                "threshold_s": float(own) if np.isfinite(own) else fired.rule.threshold,
            }
            out.append(feed_event(fired.rule, self.names[row], value, episode, now, attrs))
        return out

    def _silence_event(self, silent_for: float, now: float, n: int) -> RiskEvent:
        assert self.silence is not None
        attrs = {
            "feed": self.name,
            "endpoint": self.endpoint,
            "role": self.role,
            "contracts": n,
            "last_frame_ts": self.last_frame or None,
        }
        return feed_event(
            self.silence.rule, self.name, silent_for, self.silence.episode, now, attrs
        )

    # ---- queries --------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        backup = self.backup
        roles = {} if backup is None else {
            "takeovers": backup.takeovers, "taken": backup.taken,
            "handed_back": backup.handed_back, "poll_errors": backup.poll_errors,
        }  # fmt: skip
        return {
            **roles,
            "name": self.name,
            "endpoint": self.endpoint,
            "role": self.role,
            "contracts": len(self.names),
            "owned": int(self.owned[: len(self.names)].sum()),
            "slices": self.stats_engine.slices,
            **dict(self.counts),
            "send_errors": sum(s.sender.errors for s in self.subscribers),
            "event_send_errors": self._event_sender.errors,
            "tick_to_event_ms": self.event_latency.percentiles((50, 99)),
            "quarantine": list(self.quarantine)[-10:],
        }

    def ticks_processed(self) -> int:
        """Ticks folded so far (cheap: publishers pace themselves on it)."""
        return int(self.counts["ticks"])

    def prices(self) -> dict[str, float]:
        with self._lock:
            return {n: float(self.stats_engine.last[i]) for i, n in enumerate(self.names)}

    def market(self, instruments: list[str] | None = None) -> dict[str, dict[str, Any]]:
        """Per-contract statistics now: last, open bar, realized vol by window, limits."""
        with self._lock:
            st = self.stats_engine
            names = instruments if instruments is not None else list(self.names)
            rows = np.array([self.index[n] for n in names if n in self.index], dtype=np.int64)
            rv = st.realized_vol(rows)
            out = {}
            for k, row in enumerate(rows.tolist()):
                last = float(st.last[row])
                o, h, lo, c, v = st.bar[row].tolist()
                out[self.names[row]] = {
                    "last": last,
                    "bar": {"open": o, "high": h, "low": lo, "close": c, "volume": v},
                    "rv": {str(w): float(a[k]) for w, a in rv.items()},
                    "upper_limit": float(st.upper[row]),
                    "lower_limit": float(st.lower[row]),
                    "limit_distance": float(min(st.upper[row] - last, last - st.lower[row]) / last),
                    "locked": bool(st.locked[row]),
                    "ticks": int(st.ticks[row]),
                    "owned": bool(self.owned[row]),
                }
            return out

    def bars(self, instrument: str, limit: int = 60) -> list[dict[str, float]]:
        with self._lock:
            return self.stats_engine.bars(self.index[instrument], limit)

    def freshness(self, known: int = 0) -> dict[str, Any]:
        """For a backup: names past the first `known`, and every contract's last tick time."""
        with self._lock:
            n = len(self.names)
            return {
                "names": self.names[known:n],
                "last_arrival": self.arrival_last[:n].copy(),
                "last_frame": self.last_frame,
            }

    def set_rules(self, bundle: dict[str, Any]) -> dict[str, Any]:
        """Hot reload: the market rules of a rule-set bundle replace the feed's; rules that did
        not change keep their per-contract arming state."""
        specs = _market_specs(bundle)
        with self._lock:
            self._install(specs)
        return {"actor": f"MarketFeed.{self.name}", "rules": [r.id for r in specs]}

    def _install(self, specs: list[Any]) -> None:
        windows = tuple(self.stats_engine.p.vol_windows_s)
        self.rules = self.rules.carry_over(specs, windows, self.names, self.products)
        self._session_rules = any(r.sessions for r in specs)
        silent = [r for r in specs if r.kind == "feed_silent"]
        if not silent:
            self.silence = None
        elif self.silence is None or self.silence.rule != silent[0]:
            self.silence = SilenceState(silent[0])

    def stop(self) -> None:
        self._stop.set()


def _market_specs(bundle: Any) -> list[Any]:
    """The rules of a bundle a feed evaluates (place "market")."""
    return [r for r in bundle_of(bundle).everything if kind_of(r.kind).place(r) == "market"]
