"""The shard's side of the account bus: its buckets' records in order, each exactly once.

Split from `bus.py` (the bus itself) because the client carries its own logic: gap repair
through snapshot requests, and the settlement barrier. A settlement is one record for every
account, so the bus puts a copy into every bucket's sequence (same `seq` in each, see
`bus.py`); the client holds a bucket at its copy until every one of its buckets has reached
the same copy, then hands the settlement out once. So the settlement is applied after every
record that the bus sequenced before it and before every record sequenced after it, whatever
order the buckets' messages arrive in, live or replayed from the snapshot socket after a
restart. The wire format of the records is docs/accounts-wire.md.

A record's predecessor in its bucket is `prev` when the record carries it, else `bseq - 1`:
the bus's log is dense, but a reply that replays the compacted state (a client that fell
behind the bounded log, bus.py) skips the records a later one superseded and chains the rest
through `prev`, ending with a `compacted` marker that carries the client to the log.
"""

from __future__ import annotations

import time
from typing import Any

import msgpack
import numpy as np
import zmq

from gateways.accounts.wire import BROADCAST_TYPES, HEAD_TOPIC, decode_heads_epoch
from infra.codec import SCHEMA_VERSION, CodecError, decode_records
from rules.sharding import BUCKETS, bucket_topic

COMPACTED = "compacted"  # the marker a compacted reply ends with (bus.py)


class AccountBusClient:
    """What a shard uses: the records of its buckets, in order, each exactly once.

    Not thread-safe: one thread calls connect/poll/close. Tracks the last bseq per bucket; a record
    that skips ahead is held back and a catch-up snapshot is requested (one request in flight,
    re-sent after `request_timeout_s`), so neither a late start nor a dropped message loses data.
    A settlement is handed out once, when all of the client's buckets reached it (module doc).
    """

    def __init__(
        self,
        pub_endpoint: str,
        snapshot_endpoint: str,
        buckets: list[int],
        *,
        request_timeout_s: float = 2.0,
        max_held: int = 200_000,
        start: dict[int, int] | None = None,
    ) -> None:
        """`start`: the last bseq per bucket already applied (a consumer that kept its state);
        the first request asks for what came after it. Default: from the beginning."""
        self.pub_endpoint = pub_endpoint
        self.snapshot_endpoint = snapshot_endpoint
        self.buckets = sorted(set(int(b) for b in buckets))
        self.request_timeout_s = request_timeout_s
        self.max_held = max_held
        self.stats: dict[str, int] = {
            "records": 0,
            "gaps_repaired": 0,
            "duplicates_dropped": 0,
            "snapshots": 0,
            "bad_frames": 0,
            "settlements": 0,
            "bus_restarts": 0,
        }
        self._epoch = 0  # the bus's incarnation, from its heads frames (0: not seen yet)
        self._mine = np.zeros(BUCKETS, dtype=bool)
        self._mine[self.buckets] = True
        self._last: dict[int, int] = {b: int((start or {}).get(b, 0)) for b in self.buckets}
        self._held: dict[int, dict[int, dict[str, Any]]] = {}
        self._n_held = 0
        self._in_flight_since: float | None = None
        self._requested: set[int] = set()  # buckets of the request in flight
        self._catch_up: set[int] = set()  # of those, the ones asked for because of a gap
        self._gap_pending: set[int] = set()  # buckets known to be behind the bus
        self._blocked: set[int] = set()  # buckets standing at the pending settlement's copy
        self._barrier: dict[str, Any] | None = None  # that settlement (its first copy)
        self._sub: zmq.Socket | None = None
        self._dealer: zmq.Socket | None = None

    def connect(self) -> AccountBusClient:
        ctx = zmq.Context.instance()
        self._sub = ctx.socket(zmq.SUB)
        self._sub.setsockopt(zmq.RCVHWM, 0)
        # Subscriptions travel upstream as messages: with the default send HWM (1000) a shard of
        # 1024 buckets would silently lose some of them, HEAD included.
        self._sub.setsockopt(zmq.SNDHWM, 0)
        self._sub.setsockopt(zmq.SUBSCRIBE, HEAD_TOPIC)
        for bucket in self.buckets:
            self._sub.setsockopt(zmq.SUBSCRIBE, bucket_topic(bucket))
        self._sub.connect(self.pub_endpoint)
        self._dealer = ctx.socket(zmq.DEALER)
        self._dealer.connect(self.snapshot_endpoint)
        self._poller = zmq.Poller()
        self._poller.register(self._sub, zmq.POLLIN)
        self._poller.register(self._dealer, zmq.POLLIN)
        self._request(self.buckets, catch_up=False)
        return self

    def close(self) -> None:
        for sock in (self._sub, self._dealer):
            if sock is not None:
                sock.close(linger=0)
        self._sub = self._dealer = None

    def __enter__(self) -> AccountBusClient:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def last_bseq(self) -> dict[int, int]:
        return dict(self._last)

    # -- receiving -------------------------------------------------------------------------
    def poll(self, timeout_ms: int = 100) -> list[dict[str, Any]]:
        """New records since the last call, waiting up to `timeout_ms` for the first one."""
        if self._sub is None:
            raise RuntimeError("AccountBusClient.poll before connect()")
        out: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            self._maybe_retry()
            remaining = max(0.0, deadline - time.monotonic())
            events = dict(self._poller.poll(int(remaining * 1000)))
            if self._dealer in events:
                self._drain_dealer(out)
            if self._sub in events:
                self._drain_sub(out)
            if out or time.monotonic() >= deadline:
                return out

    def _drain_sub(self, out: list[dict[str, Any]]) -> None:
        assert self._sub is not None
        for _ in range(10_000):
            try:
                topic, payload = self._sub.recv_multipart(zmq.NOBLOCK)[:2]
            except zmq.Again:
                break
            except ValueError:
                self.stats["bad_frames"] += 1
                continue
            if topic == HEAD_TOPIC:
                self._on_heads(payload)
                continue
            try:
                _kind, records = decode_records(payload, "account_events")
            except CodecError:
                self.stats["bad_frames"] += 1
                continue
            self._accept(records, out)
        self._request_gaps()

    def _drain_dealer(self, out: list[dict[str, Any]]) -> None:
        assert self._dealer is not None
        while True:
            try:
                payload = self._dealer.recv_multipart(zmq.NOBLOCK)[-1]
            except zmq.Again:
                break
            requested, catch_up = self._requested, self._catch_up
            self._in_flight_since = None
            self._requested, self._catch_up = set(), set()
            try:
                _kind, records = decode_records(payload, "account_events")
            except CodecError:  # an error reply: ask again later
                self.stats["bad_frames"] += 1
                continue
            self.stats["snapshots"] += 1
            self._accept(records, out)
            for bucket in requested:
                if not self._has_gap(bucket):
                    self._gap_pending.discard(bucket)
                    if bucket in catch_up:
                        self.stats["gaps_repaired"] += 1
        self._request_gaps()

    def _accept(self, records: list[dict[str, Any]], out: list[dict[str, Any]]) -> None:
        touched: set[int] = set()
        for record in records:
            bucket, bseq = record.get("bucket"), record.get("bseq")
            prev = record.get("prev", bseq - 1 if isinstance(bseq, int) else None)
            if (
                not isinstance(bucket, int)
                or not isinstance(bseq, int)
                or not isinstance(prev, int)
                or not 0 <= bucket < BUCKETS
                or not prev < bseq
            ):
                self.stats["bad_frames"] += 1
                continue
            if not self._mine[bucket]:
                continue
            last = self._last[bucket]
            if bseq <= last or prev in self._held.get(bucket, ()):
                self.stats["duplicates_dropped"] += 1
            elif prev == last and bucket not in self._blocked:
                self._deliver(bucket, record, out)
                touched.add(bucket)
            elif self._n_held < self.max_held:
                self._held.setdefault(bucket, {})[prev] = record
                self._n_held += 1
                if prev != last:  # the next one waits for the barrier: not a gap
                    self._gap_pending.add(bucket)
            else:  # too much held back: drop it, the catch-up snapshot brings it again
                self._gap_pending.add(bucket)
        self._release_all(touched | set(self._held), out)

    def _deliver(self, bucket: int, record: dict[str, Any], out: list[dict[str, Any]]) -> None:
        """`record` is the next of `bucket`: hand it out, or stand the bucket at a settlement."""
        self._last[bucket] = int(record["bseq"])
        if record.get("type") == COMPACTED:  # the bus's marker: nothing to hand out
            return
        if record.get("type") not in BROADCAST_TYPES:
            out.append(record)
            self.stats["records"] += 1
            return
        if self._barrier is None:
            self._barrier = record
        elif record.get("seq") != self._barrier.get("seq"):  # the bus gives every copy one seq
            self.stats["bad_frames"] += 1
        self._blocked.add(bucket)

    def _release_all(self, buckets: set[int], out: list[dict[str, Any]]) -> None:
        """Release held records of `buckets`; pass a settlement every bucket reached, repeat."""
        pending = buckets
        while True:
            for bucket in sorted(pending):
                self._release(bucket, out)
            if self._barrier is None or len(self._blocked) < len(self.buckets):
                return
            out.append(self._barrier)
            self.stats["records"] += 1
            self.stats["settlements"] += 1
            self._barrier = None
            self._blocked.clear()
            pending = set(self._held)

    def _release(self, bucket: int, out: list[dict[str, Any]]) -> None:
        held = self._held.get(bucket)  # keyed by each record's predecessor (`prev`)
        if not held:
            self._held.pop(bucket, None)
            return
        for stale in [p for p, r in held.items() if r["bseq"] <= self._last[bucket]]:
            del held[stale]
            self._n_held -= 1
            self.stats["duplicates_dropped"] += 1
        while self._last[bucket] in held and bucket not in self._blocked:
            self._deliver(bucket, held.pop(self._last[bucket]), out)
            self._n_held -= 1
        if not held:
            del self._held[bucket]

    def _has_gap(self, bucket: int) -> bool:
        """Held records that are not just waiting for the settlement barrier."""
        held = self._held.get(bucket)
        return bool(held) and self._last[bucket] not in held

    def _on_heads(self, payload: bytes) -> None:
        try:
            heads, epoch = decode_heads_epoch(payload)
        except CodecError:
            self.stats["bad_frames"] += 1
            return
        if epoch and self._epoch and epoch != self._epoch:
            self._start_over()
        self._epoch = epoch or self._epoch
        for bucket in self.buckets:
            held = self._held.get(bucket, {})
            known = max((r["bseq"] for r in held.values()), default=self._last[bucket])
            if int(heads[bucket]) > max(known, self._last[bucket]) or self._has_gap(bucket):
                self._gap_pending.add(bucket)

    def _start_over(self) -> None:
        """The bus restarted with a new log (its bseq count again from 1): what was applied
        stays applied, everything of the new log is asked for from its beginning (before this,
        a shard that outlived its bus dropped every later record as a duplicate)."""
        self.stats["bus_restarts"] += 1
        self._last = {b: 0 for b in self.buckets}
        self._held.clear()
        self._n_held = 0
        self._barrier = None
        self._blocked.clear()
        self._gap_pending = set(self.buckets)
        self._in_flight_since = None
        self._requested, self._catch_up = set(), set()

    # -- snapshot requests -----------------------------------------------------------------
    def _request_gaps(self) -> None:
        if self._gap_pending and self._in_flight_since is None:
            self._request(sorted(self._gap_pending), catch_up=True)

    def _maybe_retry(self) -> None:
        if (
            self._in_flight_since is not None
            and time.monotonic() - self._in_flight_since > self.request_timeout_s
        ):
            self._in_flight_since = None  # a late reply is harmless: duplicates are dropped
            self._requested, self._catch_up = set(), set()
        self._request_gaps()

    def _request(self, buckets: list[int], *, catch_up: bool) -> None:
        assert self._dealer is not None
        request = {
            "v": SCHEMA_VERSION,
            "kind": "snapshot_request",
            "from": {str(b): self._last[b] for b in buckets},
        }
        self._dealer.send_multipart([b"", msgpack.packb(request)])
        self._in_flight_since = time.monotonic()
        self._requested = set(buckets)
        self._catch_up = set(buckets) if catch_up else set()
