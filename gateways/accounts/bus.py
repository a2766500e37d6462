"""The account event bus: ZeroMQ "clone" pattern (sequenced PUB + snapshot ROUTER).

Sources (simulated accounts, the order gateway's fills, a broker bridge) PUSH record frames to one
PULL socket. The bus stamps every record with its bucket (`account_bucket`), a per-bucket sequence
`bseq` and a global `seq`, keeps it in a per-bucket log and publishes it under the bucket's topic.
A shard subscribes to exactly its buckets. Because PUB/SUB drops silently (slow joiner, high-water
mark), the bus also answers snapshot requests ("everything of these buckets after bseq N") and
publishes the head `bseq` of every bucket twice a second, so a client can see that it fell behind
and catch up. `AccountBusClient` does that and hands out each record exactly once, in order.

Wire (all payloads msgpack, see `infra.codec`):

- inbound PULL: one part, `encode_records("account_events", records)`
- PUB: `[bucket_topic(b), encode_records("account_events", records of bucket b)]` per inbound
  frame and bucket; every 0.5 s `[b"HEAD", {"v":1, "kind":"heads", "heads": <uint64 LE × BUCKETS>}]`
- ROUTER: request `[id, b"", {"v":1, "kind":"snapshot_request", "from": {bucket: last_bseq}}]`
  → reply `[id, b"", encode_records("account_events", records with bseq > from, by seq)]`;
  a bad request gets `{"v":1, "kind":"error", "reason": ...}`.

Record shapes (every record: `type`, `account_id`; the bus adds `bucket`, `bseq`, `seq`, `bus_ts`):

- snapshot: pre_balance, group_path ("group/subsidiary/unit"), deposit, withdraw, close_profit,
  commission, frozen_margin, frozen_commission,
  positions: [{instrument, direction ("long"/"short"), volume, cost_price, today_volume}]
  — replaces everything known about the account.
- trade: instrument, direction ("long" buys / "short" sells), offset ("open"/"close"/
  "close_today"), volume, price, commission, trade_id, order_ref, ts
- deposit / withdraw: amount, ts
- remove: (nothing else) — the account leaves the book
- update: any snapshot field except positions
- order / cancel: order_ref, instrument, ts (order also direction, offset, volume, price) —
  the account's order stream, counted by behaviour rules (rules.engine.kinds.behaviour)

The bus checks only what it needs to route (a map with a string account_id and a known type);
the shards judge the figures. The log is in memory for the session (a trading day of a
simulated population is a few hundred MB at most); persistence is the audit journal's job.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

import msgpack
import numpy as np
import zmq

from gateways.zmq_service import ZmqService
from infra.codec import SCHEMA_VERSION, CodecError, decode_records, encode_records
from rules.sharding import BUCKETS, account_bucket, bucket_topic

RECORD_TYPES = frozenset(
    {"snapshot", "trade", "deposit", "withdraw", "remove", "update", "order", "cancel"}
)  # order / cancel: the order stream for behaviour rules (rules.engine.kinds.behaviour)
HEAD_TOPIC = b"HEAD"
HEAD_INTERVAL_S = 0.5
QUARANTINE_SIZE = 1000


def record_problem(record: Any) -> str | None:
    """Why a record cannot be routed, or None when it can."""
    if not isinstance(record, dict):
        return f"record is a {type(record).__name__}, expected a map"
    if not isinstance(record.get("account_id"), str) or not record["account_id"]:
        return "account_id missing or not a string"
    if record.get("type") not in RECORD_TYPES:
        return f"type {record.get('type')!r} not one of {sorted(RECORD_TYPES)}"
    return None


def encode_heads(heads: np.ndarray) -> bytes:
    payload = np.ascontiguousarray(heads, dtype="<u8").tobytes()
    return msgpack.packb(
        {"v": SCHEMA_VERSION, "kind": "heads", "heads": payload}, use_bin_type=True
    )


def decode_heads(payload: bytes) -> np.ndarray:
    try:
        frame = msgpack.unpackb(payload, raw=False)
    except Exception as exc:
        raise CodecError(f"heads frame is not msgpack: {exc}") from None
    if (
        not isinstance(frame, dict)
        or frame.get("v") != SCHEMA_VERSION
        or frame.get("kind") != "heads"
    ):
        raise CodecError("not a v1 heads frame")
    raw = frame.get("heads")
    if not isinstance(raw, bytes) or len(raw) != BUCKETS * 8:
        raise CodecError(f"heads must be {BUCKETS} uint64 values")
    return np.frombuffer(raw, dtype="<u8")


class AccountBus(ZmqService):
    """PULL in, sequence and log per bucket, PUB out, ROUTER for snapshots; one thread."""

    thread_name = "account-bus"

    def __init__(self, inbound_endpoint: str, pub_endpoint: str, snapshot_endpoint: str) -> None:
        super().__init__()
        self.inbound_endpoint = inbound_endpoint
        self.pub_endpoint = pub_endpoint
        self.snapshot_endpoint = snapshot_endpoint
        self.stats: dict[str, int] = {
            "received": 0,
            "published": 0,
            "rejected": 0,
            "snapshot_requests": 0,
        }
        self.quarantine: deque[dict[str, Any]] = deque(maxlen=QUARANTINE_SIZE)
        self._log: dict[int, list[dict[str, Any]]] = {}
        self._heads = np.zeros(BUCKETS, dtype=np.uint64)
        self._seq = 0
        self._next_head = 0.0

    # -- lifecycle (ZmqService) ------------------------------------------------------------
    def _open(self) -> None:
        # One inbound frame fans out to up to BUCKETS messages; a snapshot burst of 10k accounts
        # would overrun the default HWM (1000) and drop. Clients repair drops, but rarely is better.
        self.socket(zmq.PULL, bind=self.inbound_endpoint, on_message=self._inbound)
        self._pub = self.socket(zmq.PUB, bind=self.pub_endpoint, options={zmq.SNDHWM: 200_000})
        self._router = self.socket(
            zmq.ROUTER, bind=self.snapshot_endpoint, on_message=self._snapshot
        )
        self._next_head = time.monotonic()

    def heads(self) -> np.ndarray:
        """Last bseq per bucket (a copy)."""
        return self._heads.copy()

    def turn(self, now: float) -> None:
        if now >= self._next_head:
            self._pub.send_multipart([HEAD_TOPIC, encode_heads(self._heads)])
            self._next_head = now + HEAD_INTERVAL_S

    def _reject(self, reason: str, item: Any) -> None:
        self.stats["rejected"] += 1
        if isinstance(item, bytes):
            item = item[:200]
        self.quarantine.append({"reason": reason, "item": item, "ts": time.time()})

    def _inbound(self, parts: list[bytes]) -> None:
        payload = parts[-1]
        try:
            _kind, records = decode_records(payload, "account_events")
        except CodecError as exc:
            self._reject(str(exc), payload)
            return
        except Exception as exc:  # decode_records raises CodecError; be defensive anyway
            self._reject(f"{type(exc).__name__}: {exc}", payload)
            return
        now = time.time()
        by_bucket: dict[int, list[dict[str, Any]]] = {}
        for record in records:
            problem = record_problem(record)
            if problem is not None:
                self._reject(problem, record)
                continue
            self.stats["received"] += 1
            bucket = account_bucket(record["account_id"])
            self._seq += 1
            self._heads[bucket] += 1
            stamped = {
                **record,
                "bucket": bucket,
                "bseq": int(self._heads[bucket]),
                "seq": self._seq,
                "bus_ts": now,
            }
            self._log.setdefault(bucket, []).append(stamped)
            by_bucket.setdefault(bucket, []).append(stamped)
        for bucket, recs in by_bucket.items():
            self._pub.send_multipart([bucket_topic(bucket), encode_records("account_events", recs)])
            self.stats["published"] += len(recs)

    def _snapshot(self, parts: list[bytes]) -> None:
        self.stats["snapshot_requests"] += 1
        identity = parts[0]
        payload = parts[-1]
        try:
            since = self._parse_request(payload if len(parts) > 1 else b"")
        except CodecError as exc:
            self._reject(f"snapshot request: {exc}", payload)
            error = {"v": SCHEMA_VERSION, "kind": "error", "reason": str(exc)}
            self._router.send_multipart([identity, b"", msgpack.packb(error)])
            return
        out: list[dict[str, Any]] = []
        for bucket, after in since.items():
            log = self._log.get(bucket, ())
            # bseq is 1-based and dense, so the records after `after` start at index `after`.
            out.extend(log[after:] if after >= 0 else log)
        out.sort(key=lambda r: r["seq"])
        self._router.send_multipart([identity, b"", encode_records("account_events", out)])

    @staticmethod
    def _parse_request(payload: bytes) -> dict[int, int]:
        try:
            frame = msgpack.unpackb(payload, raw=False, strict_map_key=False)
        except Exception as exc:
            raise CodecError(f"not msgpack: {type(exc).__name__}") from None
        if not isinstance(frame, dict) or frame.get("v") != SCHEMA_VERSION:
            raise CodecError("not a v1 map")
        if frame.get("kind") != "snapshot_request":
            raise CodecError(f"kind {frame.get('kind')!r}, expected 'snapshot_request'")
        since = frame.get("from")
        if not isinstance(since, dict):
            raise CodecError("'from' must be a map of bucket to last bseq")
        out: dict[int, int] = {}
        for key, value in since.items():
            try:
                bucket = int(key)
            except (TypeError, ValueError):
                raise CodecError(f"bucket {key!r} is not a number") from None
            if not 0 <= bucket < BUCKETS or isinstance(value, bool) or not isinstance(value, int):
                raise CodecError(f"bad entry {key!r}: {value!r}")
            out[bucket] = max(0, value)
        return out


class AccountBusClient:
    """What a shard uses: the records of its buckets, in order, each exactly once.

    Not thread-safe: one thread calls connect/poll/close. Tracks the last bseq per bucket; a record
    that skips ahead is held back and a catch-up snapshot is requested (one request in flight,
    re-sent after `request_timeout_s`), so neither a late start nor a dropped message loses data.
    """

    def __init__(
        self,
        pub_endpoint: str,
        snapshot_endpoint: str,
        buckets: list[int],
        *,
        request_timeout_s: float = 2.0,
        max_held: int = 200_000,
    ) -> None:
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
        }
        self._mine = np.zeros(BUCKETS, dtype=bool)
        self._mine[self.buckets] = True
        self._last: dict[int, int] = {b: 0 for b in self.buckets}
        self._held: dict[int, dict[int, dict[str, Any]]] = {}
        self._n_held = 0
        self._in_flight_since: float | None = None
        self._requested: set[int] = set()  # buckets of the request in flight
        self._catch_up: set[int] = set()  # of those, the ones asked for because of a gap
        self._gap_pending: set[int] = set()  # buckets known to be behind the bus
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
                if bucket not in self._held:
                    self._gap_pending.discard(bucket)
                    if bucket in catch_up:
                        self.stats["gaps_repaired"] += 1
        self._request_gaps()

    def _accept(self, records: list[dict[str, Any]], out: list[dict[str, Any]]) -> None:
        touched: set[int] = set()
        for record in records:
            bucket, bseq = record.get("bucket"), record.get("bseq")
            if (
                not isinstance(bucket, int)
                or not isinstance(bseq, int)
                or not 0 <= bucket < BUCKETS
            ):
                self.stats["bad_frames"] += 1
                continue
            if not self._mine[bucket]:
                continue
            last = self._last[bucket]
            if bseq <= last or bseq in self._held.get(bucket, ()):
                self.stats["duplicates_dropped"] += 1
            elif bseq == last + 1:
                out.append(record)
                self._last[bucket] = bseq
                self.stats["records"] += 1
                touched.add(bucket)
            elif self._n_held < self.max_held:
                self._held.setdefault(bucket, {})[bseq] = record
                self._n_held += 1
                self._gap_pending.add(bucket)
            else:  # too much held back: drop it, the catch-up snapshot brings it again
                self._gap_pending.add(bucket)
        for bucket in touched | set(self._held):
            self._release(bucket, out)

    def _release(self, bucket: int, out: list[dict[str, Any]]) -> None:
        held = self._held.get(bucket)
        if not held:
            self._held.pop(bucket, None)
            return
        for stale in [s for s in held if s <= self._last[bucket]]:
            del held[stale]
            self._n_held -= 1
            self.stats["duplicates_dropped"] += 1
        nxt = self._last[bucket] + 1
        while nxt in held:
            out.append(held.pop(nxt))
            self._n_held -= 1
            self._last[bucket] = nxt
            self.stats["records"] += 1
            nxt += 1
        if not held:
            del self._held[bucket]

    def _on_heads(self, payload: bytes) -> None:
        try:
            heads = decode_heads(payload)
        except CodecError:
            self.stats["bad_frames"] += 1
            return
        for bucket in self.buckets:
            if int(heads[bucket]) > self._last[bucket]:
                self._gap_pending.add(bucket)

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
