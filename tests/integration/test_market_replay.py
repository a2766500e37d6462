"""Replay of real CTP ticks (../shared/data) through a MarketFeed actor: every tick is folded.

Skips, saying why, when the shared data folder is absent.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest
import ray

from actors.market_feed import MarketFeed, MarketFeedSettings
from gateways.market.replay import CsvReplayPublisher, to_batch
from infra.codec import encode_ticks
from tests.zmq_util import free_tcp_endpoint, wait_until

TICKS = Path(__file__).resolve().parents[3] / "shared" / "data" / "ticks"
SELECTED = TICKS / "cn_20171113_selected"
IF_DAY = TICKS / "CFFEX.IF2101_ticks_20210104_wtpy.csv"
ROWS = 3000  # per file: about 25 minutes of the 2017-11-10 night session

pytestmark = pytest.mark.skipif(
    not (SELECTED.is_dir() and IF_DAY.exists()),
    reason=f"real tick data not found under {TICKS} (see the shared data README)",
)


@ray.remote(num_cpus=0)
class SlowShard:
    """A subscriber slower than the flush cadence, so the fan-out to it coalesces."""

    def __init__(self) -> None:
        self.updates = 0

    def on_prices(self, update: object) -> None:
        time.sleep(0.2)
        self.updates += 1


def bars_by_hand(pub: CsvReplayPublisher, instrument: str) -> list[dict[str, float]]:
    """One-minute OHLC and volume straight from the CSV rows, one row at a time."""
    bars: dict[int, dict[str, float]] = {}
    prev_volume = None
    for row in pub.rows():
        if row.instrument != instrument:
            continue
        start = int(row.ts // 60) * 60
        traded = 0.0 if prev_volume is None else max(row.volume - prev_volume, 0.0)
        prev_volume = row.volume
        bar = bars.setdefault(
            start, {"start": float(start), "open": row.last, "high": row.last,
                    "low": row.last, "close": row.last, "volume": 0.0},
        )  # fmt: skip
        bar["high"] = max(bar["high"], row.last)
        bar["low"] = min(bar["low"], row.last)
        bar["close"] = row.last
        bar["volume"] += traded
    return [bars[k] for k in sorted(bars)]


def test_replayed_real_ticks_give_the_bars_a_row_by_row_count_gives(ray_local):
    files = [SELECTED / "rb1801_20171113.csv", SELECTED / "cu1801_20171113.csv", IF_DAY]
    endpoint = free_tcp_endpoint()
    feed = MarketFeed.remote(
        MarketFeedSettings("replay", endpoint, 20),
        subscribers=[(SlowShard.remote(), "on_prices", 0.0)],
    )
    # As fast as possible, in frames of 100 rows: folding them spans many flushes.
    pub = CsvReplayPublisher(
        endpoint, files, speed=None, max_batch=100, max_rows_per_file=ROWS, warmup_s=0
    )
    try:
        ray.get(feed.__ray_ready__.remote())
        pub._bind()  # bind first and send empty frames until the feed hears them: PUB/SUB
        empty = encode_ticks(to_batch([]))  # has no handshake, and a late SUB misses data

        def connected() -> bool:
            pub._pub.send_multipart([b"T", empty])
            return ray.get(feed.stats.remote()).get("frames", 0) > 0

        assert wait_until(connected, 20, interval=0.05)
        stats = pub.run_blocking()
        assert stats["bad_rows"] == 0 and stats["ticks_sent"] == 3 * ROWS
        assert wait_until(lambda: ray.get(feed.stats.remote())["ticks"] == 3 * ROWS, 20)
        # The fan-out did coalesce: ticks whose price was superseded before it went out (the feed
        # now folds a whole inbox per round, so a busy subscriber is no longer the only way).
        assert ray.get(feed.stats.remote())["ticks_coalesced"] > 0
        check = CsvReplayPublisher(endpoint, files, max_rows_per_file=ROWS)  # reader only
        for instrument in ("rb1801", "cu1801", "IF2101"):
            got = ray.get(feed.bars.remote(instrument, 240))
            want = bars_by_hand(check, instrument)
            assert len(got) == len(want) > 10
            for g, w in zip(got, want, strict=True):
                assert g == pytest.approx(w), instrument
        state = ray.get(feed.market.remote(["rb1801", "IF2101"]))
        assert state["rb1801"]["ticks"] == state["IF2101"]["ticks"] == ROWS
        # Windows run on data time: IF2101 (2021) is the latest data, so its window is live.
        assert 0 < state["IF2101"]["rv"]["60"] < 5 and state["rb1801"]["rv"]["60"] == 0
        # IF2101 carries its limits (pre-settlement 5216.2 × (1 ± 10%)); rb1801's file does not.
        assert (state["IF2101"]["upper_limit"], state["IF2101"]["lower_limit"]) == (5737.8, 4694.6)
        last = state["IF2101"]["last"]
        assert state["IF2101"]["limit_distance"] == pytest.approx(
            min(5737.8 - last, last - 4694.6) / last
        )
        assert math.isnan(state["rb1801"]["upper_limit"])
    finally:
        pub._close()
        ray.kill(feed)
