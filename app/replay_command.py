"""`fengkong replay FILES [--speed X]`: publish tick CSVs onto a running system's market feed.

Every format the backtest reads (`gateways.market.replay`: CTP/wtpy full rows, the short
8-column format, plain or .gz). The publisher binds the endpoint of a configured feed
(`--feed NAME`, default the first `[[market.feeds]]`) or `--endpoint`; the running system's
MarketFeed is connected to that endpoint and takes the frames as live ticks. Give the replay a
feed of its own (nothing else may bind the endpoint: not the simulator, not CTP market data).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any


def cmd_replay(args: argparse.Namespace, load_config: Callable[[argparse.Namespace], Any]) -> int:
    from gateways.market.replay import CsvReplayPublisher

    endpoint = args.endpoint
    if not endpoint:
        feeds = load_config(args).market.feeds
        named = [f for f in feeds if not args.feed or f.name == args.feed]
        if not named:
            print(f"no [[market.feeds]] named {args.feed!r} (have {[f.name for f in feeds]})")
            return 2
        endpoint = named[0].endpoint
    try:
        pub = CsvReplayPublisher(endpoint, [Path(f) for f in args.files],
                                 speed=args.speed or None, trading_day=args.trading_day,
                                 warmup_s=args.warmup)  # fmt: skip
    except (FileNotFoundError, ValueError) as exc:
        print(f"replay: {exc}")
        return 2
    speed = "as fast as possible" if not args.speed else f"{args.speed:g}x real time"
    print(f"replaying {len(args.files)} file(s) onto {endpoint}, {speed}; Ctrl-C to stop")
    try:
        stats = pub.run_blocking()
    except KeyboardInterrupt:
        stats = pub.stats
    except ValueError as exc:
        print(f"replay: {exc}")
        return 2
    print(f"{stats['ticks_sent']} ticks in {stats['batches_sent']} frames, "
          f"{stats['bad_rows']} bad rows of {stats['rows_read']}")  # fmt: skip
    for reject in pub.rejects:
        print(f"  {reject}")
    return 0 if stats["ticks_sent"] else 1


def add_parser(sub: Any, common: Callable[[argparse.ArgumentParser], None],
               load_config: Callable[[argparse.Namespace], Any]) -> None:  # fmt: skip
    p = sub.add_parser("replay", help="publish tick CSVs onto a running system's market feed")
    common(p)
    p.add_argument("files", nargs="+", help="tick CSV files (.csv or .csv.gz)")
    p.add_argument("--speed", type=float, default=1.0,
                   help="times real time (default 1); 0 = as fast as possible")  # fmt: skip
    p.add_argument("--feed", default="", help="the [[market.feeds]] entry to publish on")
    p.add_argument("--endpoint", default="", help="bind this endpoint instead of a feed's")
    p.add_argument("--trading-day", default=None, help="YYYYMMDD for files without one")
    p.add_argument("--warmup", type=float, default=1.0,
                   help="seconds to wait for the feed to connect before the first tick")  # fmt: skip
    p.set_defaults(func=lambda a: cmd_replay(a, load_config))
