"""A MarketFeed actor on a real ZeroMQ socket: bad frames are counted and skipped, good ones flow."""

from __future__ import annotations

import msgpack
import numpy as np
import ray

from actors.market_feed import MarketFeed, MarketFeedSettings
from infra.codec import encode_ticks
from rules.model import PriceUpdate, TickBatch
from tests.integration.harness import ScriptedMarket
from tests.zmq_util import free_tcp_endpoint, wait_until


@ray.remote(num_cpus=0)
class Recorder:
    def __init__(self) -> None:
        self.updates: list[PriceUpdate] = []

    def on_prices(self, update: PriceUpdate) -> None:
        self.updates.append(update)

    def latest(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for u in self.updates:
            out.update(zip(u.instruments, u.last.tolist(), strict=True))
        return out

    def count(self) -> int:
        return len(self.updates)


def _ticks(names: list[str], last: list[float]) -> bytes:
    n = len(last)
    z = np.zeros(n)
    idx = np.arange(n, dtype=np.uint32) % len(names)
    return encode_ticks(TickBatch(names, idx, np.array(last), z, z, z, z, z, z, z, z))


def test_malformed_frames_counted_and_skipped_while_good_frames_flow(ray_local):
    endpoint = free_tcp_endpoint()
    market = ScriptedMarket(endpoint, {"rb2601": 3000.0}, period_s=0.05)
    recorder = Recorder.remote()
    feed = MarketFeed.remote(
        MarketFeedSettings("t", endpoint, 20), subscribers=[(recorder, "on_prices", 0.0)]
    )
    try:
        assert wait_until(lambda: ray.get(recorder.latest.remote()).get("rb2601") == 3000.0, 10)
        garbage = [
            [b"T", b"\x00\x01not msgpack"],
            [b"T", msgpack.packb({"v": 2, "kind": "ticks"})],
            [b"T", msgpack.packb({"v": 1, "kind": "ticks", "n": 3, "instruments": [], "cols": {}})],
            [b"T"],  # one part only
            [b"T", _ticks(["rb2601"], [float("nan"), 3010.0])],  # one NaN tick, one good tick
            [b"T", _ticks(["zz2601"], [12.0])],  # a contract with no spec
        ]
        for parts in garbage:
            market.publish_raw(parts)
        market.set(rb2601=3050.0)
        assert wait_until(lambda: ray.get(recorder.latest.remote()).get("rb2601") == 3050.0, 10)
        stats = ray.get(feed.stats.remote())
        assert stats["rejected_malformed_frame"] == 4
        assert stats["rejected_bad_price"] == 1
        assert stats["rejected_unknown_contract"] == 1
        reasons = {q["reason"] for q in stats["quarantine"]}
        assert {"malformed_frame", "bad_price", "unknown_contract"} <= reasons
        # Updates are batched on the flush cadence, never one call per tick.
        assert ray.get(recorder.count.remote()) <= stats["ticks"]
    finally:
        ray.kill(feed)
        market.stop()
