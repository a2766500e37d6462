"""Stable placement of accounts on shards.

An account id hashes (crc32, stable across processes and Python versions, unlike `hash()`) to one
of `BUCKETS` buckets; a shard owns the buckets `b % n_shards == k`. Buckets are also the ZeroMQ
topics of the account bus, so a shard subscribes to exactly its accounts and a cluster grows by
restarting with more shards: ownership is recomputed and each shard replays its buckets.
"""

from __future__ import annotations

import zlib

BUCKETS = 1024


def account_bucket(account_id: str) -> int:
    return zlib.crc32(account_id.encode("utf-8")) % BUCKETS


def shard_of(account_id: str, n_shards: int) -> int:
    return account_bucket(account_id) % n_shards


def buckets_of_shard(shard: int, n_shards: int) -> list[int]:
    return [b for b in range(BUCKETS) if b % n_shards == shard]


def bucket_topic(bucket: int) -> bytes:
    return b"A%04d" % bucket
