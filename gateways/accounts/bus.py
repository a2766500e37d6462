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
  frame and bucket; every 0.5 s `[b"HEAD", {"v":1, "kind":"heads", "heads": <uint64 LE × BUCKETS>,
  "epoch": <this bus's incarnation>}]` (a client that sees the epoch change starts over: a bus
  restarted in place keeps its address, not its log)
- ROUTER: request `[id, b"", {"v":1, "kind":"snapshot_request", "from": {bucket: last_bseq}}]`
  → reply `[id, b"", encode_records("account_events", records with bseq > from, by seq)]`;
  a bad request gets `{"v":1, "kind":"error", "reason": ...}`.

Records: the kinds and every field (unit, sign, required or optional, defaults, what each cost
convention expects in pre_balance, a worked example per kind) are in docs/accounts-wire.md;
`gateways.accounts.wire` checks them. The bus adds `bucket`, `bseq`, `seq`, `bus_ts`.

A settlement (the trading day rolls for every account) has no account: the bus appends a copy
to every bucket's log, each with its own `bseq` and all with the same `seq`, so it is replayed
from the snapshot socket like any record and every shard sees it in each of its buckets;
`AccountBusClient` (gateways.accounts.bus_client) hands it out once, when all of its buckets
reached it, so it is applied in order with the account records around it.

The bus checks only what it needs to route (a map of a known type, a string account_id unless
it is a settlement); the shards judge the figures and the required fields (`wire.record_problem`:
rejected records are counted, quarantined and journaled there).

Memory is bounded: the log holds the newest `log_size` records (all buckets together; config
`accounts.bus_log_size`); a record that leaves it is folded into the compacted state
(`bus_compact.py`: per account its latest snapshot and what followed, the day's orders with a
status, the settlements in use), which drops what a later record superseded. A snapshot
request for a bucket the client has kept up with is answered from the log, as before; one for
a bucket it fell behind on (its last bseq is older than the log's first) gets the compacted
records of the bucket after its last bseq, then the log. Compacted records keep their bseq, so
that part of a reply has gaps: each record of a reply carries `prev` (the bseq the client must
have reached before it), and a `{"type": "compacted"}` marker carries the client to the bseq
just before the log. `stats["held"]` counts every record held (log plus compacted).
Persistence is the audit journal's job.
"""

from __future__ import annotations

import secrets
import time
from collections import deque
from itertools import islice
from typing import Any

import msgpack
import numpy as np
import zmq

from gateways.accounts.bus_client import AccountBusClient
from gateways.accounts.bus_compact import Compaction
from gateways.accounts.wire import (
    BROADCAST_TYPES,
    HEAD_TOPIC,
    RECORD_TYPES,
    decode_heads,
    encode_heads,
    record_problem,
    route_problem,
)
from gateways.zmq_service import ZmqService
from infra.codec import SCHEMA_VERSION, CodecError, decode_records, encode_records
from rules.sharding import BUCKETS, account_bucket, bucket_topic

__all__ = [
    "RECORD_TYPES", "AccountBus", "AccountBusClient", "decode_heads", "encode_heads",
    "record_problem", "route_problem",
]  # fmt: skip
HEAD_INTERVAL_S = 0.5
QUARANTINE_SIZE = 1000
LOG_SIZE = 200_000  # records in the log, all buckets together (accounts.bus_log_size)


class AccountBus(ZmqService):
    """PULL in, sequence and log per bucket, PUB out, ROUTER for snapshots; one thread."""

    thread_name = "account-bus"

    def __init__(
        self,
        inbound_endpoint: str,
        pub_endpoint: str,
        snapshot_endpoint: str,
        *,
        log_size: int = LOG_SIZE,
    ) -> None:
        super().__init__()
        if isinstance(log_size, bool) or not isinstance(log_size, int) or log_size < 1:
            raise ValueError(f"account bus log_size must be a positive integer, got {log_size!r}")
        self.log_size = log_size
        self.inbound_endpoint = inbound_endpoint
        self.pub_endpoint = pub_endpoint
        self.snapshot_endpoint = snapshot_endpoint
        self.stats: dict[str, int] = {
            "received": 0,
            "published": 0,
            "rejected": 0,
            "snapshot_requests": 0,
            "compacted_replies": 0,
            "held": 0,
            "superseded": 0,
        }
        self.quarantine: deque[dict[str, Any]] = deque(maxlen=QUARANTINE_SIZE)
        self._log: dict[int, deque[dict[str, Any]]] = {}
        self._order: deque[int] = deque()  # the bucket of every logged record, oldest first
        self._evicted = np.zeros(BUCKETS, dtype=np.int64)  # last bseq that left the log
        self.compacted = Compaction()
        self._heads = np.zeros(BUCKETS, dtype=np.uint64)
        self._seq = 0
        self._next_head = 0.0
        self.epoch = 1 + secrets.randbelow(2**48)  # this incarnation (in every heads frame)

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
            self._pub.send_multipart([HEAD_TOPIC, encode_heads(self._heads, self.epoch)])
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
            problem = route_problem(record)
            if problem is not None:
                self._reject(problem, record)
                continue
            self.stats["received"] += 1
            self._seq += 1
            broadcast = record["type"] in BROADCAST_TYPES
            for bucket in range(BUCKETS) if broadcast else (account_bucket(record["account_id"]),):
                self._heads[bucket] += 1
                stamped = {**record, "bucket": bucket, "bseq": int(self._heads[bucket]),
                           "seq": self._seq, "bus_ts": now}  # fmt: skip
                self._log.setdefault(bucket, deque()).append(stamped)
                self._order.append(bucket)
                by_bucket.setdefault(bucket, []).append(stamped)
        self._evict()
        for bucket, recs in by_bucket.items():
            self._pub.send_multipart([bucket_topic(bucket), encode_records("account_events", recs)])
            self.stats["published"] += len(recs)

    def _evict(self) -> None:
        """Records past `log_size` leave the log, oldest first, into the compacted state."""
        while len(self._order) > self.log_size:
            bucket = self._order.popleft()
            record = self._log[bucket].popleft()
            self._evicted[bucket] = record["bseq"]
            self.compacted.fold(record)
        self.stats["held"] = len(self._order) + self.compacted.held
        self.stats["superseded"] = self.compacted.superseded

    def held(self) -> int:
        """Records the bus holds: the log plus the compacted state."""
        return len(self._order) + self.compacted.held

    def _replay(self, bucket: int, after: int) -> list[dict[str, Any]]:
        """What a client that reached `after` in `bucket` needs (module doc)."""
        log = self._log.get(bucket, ())
        evicted = int(self._evicted[bucket])
        if after >= evicted:  # kept up: bseq is dense in the log, from evicted + 1
            return list(islice(log, after - evicted, None))
        self.stats["compacted_replies"] += 1
        out, prev, seq = [], after, 0
        for record in self.compacted.records(bucket, after):
            out.append({**record, "prev": prev})
            prev, seq = record["bseq"], record["seq"]
        if prev < evicted:
            out.append({"type": "compacted", "bucket": bucket, "bseq": evicted, "prev": prev,
                        "seq": seq})  # fmt: skip
        out.extend(log)
        return out

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
            out.extend(self._replay(bucket, after))
        out.sort(key=lambda r: r["seq"])  # stable: a bucket's records keep their order
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
