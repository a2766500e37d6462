"""Account views from their shards: one Ray call per shard, all in flight at once."""

from __future__ import annotations

import logging
from typing import Any

import ray

from actors.common import actor_name
from rules.sharding import shard_of

log = logging.getLogger(__name__)


class ShardViews:
    def __init__(self, n_shards: int, name_prefix: str) -> None:
        self.n_shards = n_shards
        self.name_prefix = name_prefix
        self.errors = 0  # accounts whose shard did not answer (restarting)
        self._shards: dict[int, Any] = {}

    def _shard(self, k: int) -> Any:
        if k not in self._shards:
            self._shards[k] = ray.get_actor(actor_name(self.name_prefix, "AccountShard", str(k)))
        return self._shards[k]

    def fetch(self, account_ids: list[str] | tuple[str, ...]) -> dict[str, dict[str, Any]]:
        by_shard: dict[int, list[str]] = {}
        for a in dict.fromkeys(account_ids):
            by_shard.setdefault(shard_of(a, self.n_shards), []).append(a)
        refs = {k: self._shard(k).accounts.remote(ids) for k, ids in by_shard.items()}
        out: dict[str, dict[str, Any]] = {}
        for k, ref in refs.items():
            try:
                out.update(ray.get(ref, timeout=30))
            except Exception as exc:  # a shard restarting: no views from it this time
                self.errors += len(by_shard[k])
                log.debug("no views from shard %s: %s", k, exc)
        return out
