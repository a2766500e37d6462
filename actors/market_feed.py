"""MarketFeed actor: one per market-data endpoint.

A receive thread only takes frames off the ZeroMQ SUB socket, stamps their arrival and queues
them (the inbox: at most `market.max_backlog_frames`, the oldest dropped and counted beyond
it), so ZeroMQ's own queue never overflows unseen and the arrival stamps are honest. An ingest
thread takes the whole inbox each round (actors/feed_ingest.py), rejects what is malformed or
stamped in the future (counted and quarantined with the reason), and folds every good tick of
the round in one vectorized update into per-contract market statistics (rules.market_stats:
OHLC bars, realized volatility, jumps, limits, volume and OI spikes) before evaluating the
market rules on them (rules.engine.kinds.market_set). A flush thread, every `flush_ms`, pushes
one PriceUpdate per subscriber with the latest price of every contract that changed — never
one call per tick; a subscriber still busy with the previous update is skipped this round and
gets the coalesced changes next time — and sends the market RiskEvents raised since the last
flush to the Correlator in one call. Statistics never coalesce: only the fan-out does.

Every flush also measures the feed's lag (arrival to fan-out, actors/feed_lag.py) and raises
`market.feed_lag` past `market.lag_bound_ms`. Every `check_ms` the flush thread also looks for
stale contracts (a live contract silent for longer than its threshold within its session), and
for a silent feed (one alert for the whole feed, which then stands in for the per-contract
alerts). A backup feed (see actors.feed_group) polls its primary there and takes over the
contracts the primary has gone stale on.
"""

from __future__ import annotations

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
from actors.feed_adaptive import FeedAdaptive
from actors.feed_checks import FeedChecks
from actors.feed_fanout import FeedFanout, Subscriber
from actors.feed_group import BackupRole
from actors.feed_ingest import FeedIngest
from actors.feed_lag import LagMonitor
from actors.rule_host import bundle_of
from actors.shell import ActorShell
from infra.config import MarketConfig
from infra.config.legacy import market_rule_spec
from infra.stats import LatencyRing
from rules.engine.kinds import kind_of
from rules.engine.kinds.market_set import MarketRuleSet, SilenceState
from rules.market_stats import MarketStats, StatsParams
from rules.model import RiskEvent

QUARANTINE_SIZE = 200
RECV_BURST = 10_000  # frames taken off the socket per inbox hand-over
# The inbox's bound in bytes, besides `market.max_backlog_frames`: a flood of large frames
# must not take the node's memory either.
MAX_BACKLOG_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class MarketFeedSettings:
    name: str
    endpoint: str  # the market PUB to subscribe to
    flush_ms: int = 50  # the most a price waits before subscribers see it
    topic: bytes = b"T"
    role: str = "primary"  # or "backup": takes a contract over when the primary goes stale
    market: MarketConfig = MarketConfig()  # config `[market]`: stats, rules, stale, takeover


@ray.remote(**ACTOR_OPTIONS)
class MarketFeed(ActorShell, FeedIngest, FeedChecks, FeedFanout, FeedAdaptive):
    def __init__(
        self,
        settings: MarketFeedSettings,
        *,
        context: Context | None = None,
        subscribers: list[tuple[Any, str, float]] | None = None,
        correlator: Any = None,
        primary: Any = None,
        rules: dict[str, Any] | None = None,
        audit: Any = None,
    ) -> None:
        market, name, role, topic = settings.market, settings.name, settings.role, settings.topic
        # The session clock: wall time, or (demos and tests outside trading hours) wall time
        # shifted so that it started at `session_clock_start` (the Context carries the shift).
        context = context if context is not None else Context.of_market(market)
        super().__init__(f"MarketFeed.{name}", context, QUARANTINE_SIZE)
        self.counts.update(checks=0, events=0, ticks=0)
        self.settings = settings
        self.name = name  # the feed's name (events, updates and stats carry it)
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
        self._init_adaptive(audit, rules)  # learned baselines back from the journal
        cap = 256
        self.arrival_last = np.full(cap, np.nan)  # wall time of each contract's last tick
        self.first_arrival = np.full(cap, np.nan)  # ... and of its first
        self.price_arrival = np.full(cap, np.nan)  # arrival of the last price sent out ...
        self.price_sent = np.full(cap, np.nan)  # ... and when it was sent
        self.template = np.zeros(cap, dtype=np.int64)  # session schedule of each contract
        self.stale_s = np.full(cap, np.nan)  # per-contract stale threshold override
        self.owned = np.ones(cap, dtype=bool)  # a standby backup owns nothing
        self.subscribers = [Subscriber(h, m, cap, i) for h, m, i in (subscribers or [])]
        self.backup = BackupRole(primary, market.takeover_s) if role == "backup" else None
        if self.backup is not None:
            self.owned[:] = False
        self.unknown: set[str] = set()
        self.seq = 0
        self.started = time.time()
        self.last_frame = 0.0
        self._events: list[RiskEvent] = []
        self._event_sender = BoundedSender(max_in_flight=2)
        self.event_latency = LatencyRing(20_000)
        self._lock = threading.Lock()
        self._m_ticks = self.metric("counter", "ticks_total", "ticks accepted by market feeds")
        self._m_bad = self.metric(
            "counter", "bad_frames_total", "rejected frames or ticks", tag_keys=("actor", "reason")
        )
        self._m_events = self.metric("counter", "market_events_total", "market risk events raised")
        self._m_lag = self.metric(
            "gauge", "feed_lag_seconds", "oldest price or frame not yet fanned out, seconds"
        )
        self._m_coalesced = self.metric(
            "counter", "feed_ticks_coalesced_total", "ticks folded but superseded before fan-out"
        )
        self._m_dropped = self.metric(
            "counter", "feed_frames_dropped_total", "frames dropped from a full feed inbox"
        )
        self.lag = LagMonitor(market.lag_bound_ms / 1000)
        self.max_backlog = int(market.max_backlog_frames)
        self._inbox: list[tuple[float, list[bytes]]] = []
        self._inbox_bytes = 0
        self._inbox_lock = threading.Lock()
        self._inbox_ready = threading.Event()
        self._folding_since = np.inf  # oldest arrival of the round being folded
        self._tags = {"actor": f"MarketFeed.{name}"}
        self._sock = zmq.Context.instance().socket(zmq.SUB)  # used by the receive loop alone
        self._sock.setsockopt(zmq.RCVHWM, 100_000)
        self._sock.setsockopt(zmq.SUBSCRIBE, topic)
        self._sock.connect(self.endpoint)
        self._poller = zmq.Poller()
        self._poller.register(self._sock, zmq.POLLIN)
        self._next_check = time.monotonic() + self.check_s
        self.every(0.0, self._receive, "recv")  # each poll waits up to 100 ms
        self.every(0.0, self._ingest_step, "ingest")  # each wait for frames up to 100 ms
        self.every(self.flush_s, self._flush_step, "flush")

    # ---- receive --------------------------------------------------------------------------

    def _receive(self) -> None:
        """Every frame waiting on the SUB socket into the inbox, stamped on arrival."""
        if not self._poller.poll(100):
            return
        got: list[tuple[float, list[bytes]]] = []
        size = 0
        for _ in range(RECV_BURST):
            try:
                parts = self._sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            got.append((time.time(), parts))
            size += sum(len(p) for p in parts)
        with self._inbox_lock:
            self._inbox.extend(got)
            self._inbox_bytes += size
            over = max(0, len(self._inbox) - self.max_backlog)
            while self._inbox_bytes - _bytes(self._inbox[:over]) > MAX_BACKLOG_BYTES:
                over += max(1, (len(self._inbox) - over) // 10)
            if over > 0:  # the ingest is this far behind: the oldest frames go, counted
                over = min(over, len(self._inbox))
                self._inbox_bytes -= _bytes(self._inbox[:over])
                del self._inbox[:over]
        if over > 0:
            self.counts["frames_dropped"] += over
            self._m_dropped.inc(over, tags=self._tags)
            self.reject("frames_dropped", f"{over} frames dropped: inbox full ({self.max_backlog})")
        self._inbox_ready.set()

    def _ingest_step(self) -> None:
        """One round: every frame queued since the last (ingest: actors/feed_ingest.py)."""
        if not self._inbox_ready.wait(0.1):
            return
        with self._inbox_lock:
            frames, self._inbox = self._inbox, []
            self._inbox_bytes = 0
            self._inbox_ready.clear()
            self._folding_since = frames[0][0] if frames else np.inf
        try:
            self._fold(frames)
        finally:
            self._folding_since = np.inf

    def _fold(self, frames: list[tuple[float, list[bytes]]]) -> None:
        try:
            self._on_frames(frames)
        except Exception as exc:  # a bug on one frame must not cost the round: one by one
            self.failed("ingest", exc)
            for frame in frames:
                try:
                    self._on_frames([frame])
                except Exception as one:
                    self._reject("internal_error", f"{type(one).__name__}: {one}")

    def _unfolded_since(self) -> float:
        """Arrival of the oldest frame received and not folded yet (inf: none)."""
        with self._inbox_lock:
            queued = self._inbox[0][0] if self._inbox else np.inf
        return min(queued, self._folding_since)

    def _backlog(self) -> int:
        with self._inbox_lock:
            return len(self._inbox)

    # ---- flush and checks -----------------------------------------------------------------

    def _flush_step(self) -> None:
        """Every `flush_ms`: the checks when due (actors/feed_checks.py), then the fan-out
        (actors/feed_fanout.py)."""
        if time.monotonic() >= self._next_check:
            self._next_check = time.monotonic() + self.check_s
            self.check()
            self._maybe_save_adaptive()
        self.flush()

    # ---- queries --------------------------------------------------------------------------

    def figures(self) -> dict[str, Any]:
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
            "send_errors": sum(s.sender.errors for s in self.subscribers),
            "event_send_errors": self._event_sender.errors,
            "tick_to_event_ms": self.event_latency.percentiles((50, 99)),
            "lag_ms": round(self.lag.lag_s * 1000, 1),
            "worst_lag_ms": round(self.lag.worst_s * 1000, 1),
            "backlog_frames": self._backlog(),
            "stats_clock": self.stats_engine.clock,
            "quarantine": list(self.quarantine)[-10:],
        }

    def ticks_processed(self) -> int:
        """Ticks folded so far (cheap: publishers pace themselves on it)."""
        return int(self.counts["ticks"])

    def price_times(self, instruments: list[str]) -> dict[str, dict[str, float]]:
        """Per contract: its last price, when the tick carrying the last price sent out arrived
        on the socket and when it was sent to the subscribers (NaN: not sent yet)."""
        with self._lock:
            out = {}
            for name in instruments:
                row = self.index.get(name)
                if row is not None:
                    out[name] = {
                        "last": float(self.stats_engine.last[row]),
                        "arrival": float(self.price_arrival[row]),
                        "sent": float(self.price_sent[row]),
                    }
            return out

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
        super().stop()  # the receive loop has ended: its socket can close
        self._sock.close(linger=0)


def _bytes(frames: list[tuple[float, list[bytes]]]) -> int:
    return sum(len(p) for _, parts in frames for p in parts)


def _market_specs(bundle: Any) -> list[Any]:
    """The rules of a bundle a feed evaluates (place "market")."""
    return [r for r in bundle_of(bundle).everything if kind_of(r.kind).place(r) == "market"]
