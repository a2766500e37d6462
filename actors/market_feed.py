"""MarketFeed actor: one per market-data endpoint.

A receive thread takes every tick frame off its ZeroMQ SUB socket, rejects what is malformed
(counted and quarantined with the reason), and folds the good ticks into per-contract state with
vector operations. A flush thread pushes, every `flush_ms`, one PriceUpdate per subscriber with the
latest price of every contract that changed — never one call per tick. A subscriber still busy
with the previous update is skipped this round and gets the coalesced changes next time.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Any

import numpy as np
import ray
import zmq

from actors.common import ACTOR_OPTIONS, BoundedSender
from infra import metrics
from infra.codec import CodecError, decode_ticks, split_bad_ticks
from infra.specs import load_contract_table
from rules.contracts import UnknownContract, product_of
from rules.model import PriceUpdate

QUARANTINE_SIZE = 200


class _Subscriber:
    def __init__(self, handle: Any, method: str, capacity: int, min_interval_s: float) -> None:
        self.handle = handle
        self.method = method
        self.min_interval_s = min_interval_s  # slow consumers (books) need no 50 ms cadence
        self.last_sent = 0.0
        self.sender = BoundedSender(max_in_flight=1)
        self.pending = np.zeros(capacity, dtype=bool)
        self.arrival = np.full(capacity, np.inf)


@ray.remote(**ACTOR_OPTIONS)
class MarketFeed:
    def __init__(
        self,
        name: str,
        endpoint: str,
        flush_ms: int = 50,
        subscribers: list[tuple[Any, str, float]] | None = None,
        contracts_overrides: tuple[str, ...] = (),
        topic: bytes = b"T",
    ) -> None:
        self.name = name
        self.endpoint = endpoint
        self.flush_s = flush_ms / 1000
        self.table = load_contract_table(contracts_overrides)
        self.index: dict[str, int] = {}
        self.names: list[str] = []
        cap = 256
        self.last = np.full(cap, np.nan)
        self.upper_limit = np.full(cap, np.nan)
        self.lower_limit = np.full(cap, np.nan)
        self.pre_settlement = np.full(cap, np.nan)
        self.tick_count = np.zeros(cap, dtype=np.int64)
        self.subscribers = [_Subscriber(h, m, cap, i) for h, m, i in (subscribers or [])]
        self.unknown: set[str] = set()
        self.quarantine: collections.deque[dict[str, Any]] = collections.deque(
            maxlen=QUARANTINE_SIZE
        )
        self.counts = collections.Counter()
        self.seq = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._m_ticks = metrics.counter("ticks_total", "ticks accepted by market feeds")
        self._m_bad = metrics.counter(
            "bad_frames_total", "rejected frames or ticks", tag_keys=("actor", "reason")
        )
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
                f"{int(bad.sum())} ticks with NaN/inf/non-positive last",
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
            idx = idx[known]
        if idx.size:
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
            self.table.spec(product_of(name))
        except (UnknownContract, ValueError) as exc:
            self.unknown.add(name)
            self.quarantine.append(
                {"ts": time.time(), "reason": "unknown_contract", "detail": str(exc)}
            )
            return -1
        with self._lock:
            row = len(self.names)
            if row >= self.last.shape[0]:
                self._grow(2 * self.last.shape[0])
            self.index[name] = row
            self.names.append(name)
        return row

    def _grow(self, cap: int) -> None:
        def grown(arr: np.ndarray, fill: float) -> np.ndarray:
            new = np.full(cap, fill, dtype=arr.dtype)
            new[: arr.shape[0]] = arr
            return new

        self.last = grown(self.last, np.nan)
        self.upper_limit = grown(self.upper_limit, np.nan)
        self.lower_limit = grown(self.lower_limit, np.nan)
        self.pre_settlement = grown(self.pre_settlement, np.nan)
        self.tick_count = grown(self.tick_count, 0)
        for sub in self.subscribers:
            sub.pending = grown(sub.pending, False)
            sub.arrival = grown(sub.arrival, np.inf)

    def _apply(self, batch: Any, idx: np.ndarray, known: np.ndarray, now: float) -> None:
        """Fold a batch into state: last tick per contract wins; every tick is counted."""
        # Index of the last occurrence of each contract in the batch (ticks are in time order).
        rev_unique, rev_first = np.unique(idx[::-1], return_index=True)
        last_pos = idx.shape[0] - 1 - rev_first
        sel = np.flatnonzero(known)[last_pos]
        with self._lock:
            self.last[rev_unique] = batch.last[sel]
            for col in ("upper_limit", "lower_limit", "pre_settlement"):
                values = getattr(batch, col)[sel]
                ok = np.isfinite(values)
                getattr(self, col)[rev_unique[ok]] = values[ok]
            self.tick_count += np.bincount(idx, minlength=self.tick_count.shape[0])
            for sub in self.subscribers:
                sub.pending[rev_unique] = True
                np.minimum.at(sub.arrival, rev_unique, now)
        self.counts["ticks"] += int(idx.shape[0])
        self._m_ticks.inc(int(idx.shape[0]), tags=self._tags)

    # ---- flush ----------------------------------------------------------------------------

    def _flush_loop(self) -> None:
        while not self._stop.wait(self.flush_s):
            self.flush()

    def flush(self) -> int:
        """Send each free subscriber the contracts changed since its last update."""
        sent = 0
        now = time.time()
        for sub in self.subscribers:
            if now - sub.last_sent < sub.min_interval_s:
                continue
            if sub.sender.busy():
                self.counts["coalesced"] += 1
                continue
            with self._lock:
                rows = np.flatnonzero(sub.pending[: len(self.names)])
                if rows.size == 0:
                    continue
                self.seq += 1
                update = PriceUpdate(
                    instruments=[self.names[r] for r in rows],
                    last=self.last[rows].copy(),
                    upper_limit=self.upper_limit[rows].copy(),
                    lower_limit=self.lower_limit[rows].copy(),
                    pre_settlement=self.pre_settlement[rows].copy(),
                    arrival_ts=sub.arrival[rows].copy(),
                    seq=self.seq,
                    feed=self.name,
                )
                sub.pending[rows] = False
                sub.arrival[rows] = np.inf
            sub.sender.send(getattr(sub.handle, sub.method).remote(update))
            sub.last_sent = now
            sent += 1
        self.counts["updates_sent"] += sent
        return sent

    # ---- queries --------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "endpoint": self.endpoint,
            "contracts": len(self.names),
            **dict(self.counts),
            "send_errors": sum(s.sender.errors for s in self.subscribers),
            "quarantine": list(self.quarantine)[-10:],
        }

    def prices(self) -> dict[str, float]:
        with self._lock:
            return {n: float(self.last[i]) for i, n in enumerate(self.names)}

    def stop(self) -> None:
        self._stop.set()
