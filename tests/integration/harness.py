"""A small, deterministic world around a real system: scripted prices, hand-made accounts.

Everything is real — ZeroMQ sockets on loopback, the account bus, the simulated order gateway,
the HTTP provider sink, Ray actors, a SQLite journal — only the market is scripted so a test
knows exactly which accounts must cross a line.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import zmq

from app.demo import sink_channels
from app.supervisor import System, start_system, stop_system
from gateways.accounts.bus import AccountBus
from gateways.sim.order_gateway import SimOrderGateway
from gateways.sim.provider_sink import ProviderSink
from infra import config
from infra.codec import encode_records, encode_ticks
from infra.specs import load_contract_table
from rules.contracts import limit_prices
from rules.model import TickBatch
from tests.zmq_util import free_tcp_endpoint


class ScriptedMarket:
    """Publishes the current price of every instrument every `period_s`, like a live feed, and
    at once when a test sets a price (a move is not held back until the next round; the rounds
    in between only repeat prices, and at 20 Hz they cost the suite a tenth of a core per
    system)."""

    def __init__(self, endpoint: str, prices: dict[str, float], period_s: float = 0.25) -> None:
        self.table = load_contract_table()
        self.endpoint = endpoint
        self.prices = dict(prices)
        self.pre_settlement = dict(prices)
        self.period_s = period_s
        # one lock for the prices and the socket: a round never sends a price that a set()
        # replaced while it was being encoded (it would undo the move until the next round)
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._sock = zmq.Context.instance().socket(zmq.PUB)
        self._sock.bind(endpoint)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def set(self, **prices: float) -> None:
        with self._lock:
            self.prices.update(prices)
            self._publish()

    def batch(self) -> TickBatch:
        with self._lock:
            names = list(self.prices)
            last = np.array([self.prices[n] for n in names])
        pre = np.array([self.pre_settlement[n] for n in names])
        specs = [self.table.spec(n) for n in names]
        upper, lower = limit_prices(
            pre, np.array([s.limit_rate for s in specs]), np.array([s.tick_size for s in specs])
        )
        n = len(names)
        z = np.zeros(n)
        return TickBatch(
            instruments=names,
            instrument_idx=np.arange(n, dtype=np.uint32),
            last=last,
            volume=z,
            open_interest=z,
            bid=last,
            ask=last,
            exchange_ts=np.full(n, time.time()),
            upper_limit=upper,
            lower_limit=lower,
            pre_settlement=pre,
        )

    def publish_raw(self, parts: list[bytes]) -> None:
        with self._lock:
            self._sock.send_multipart(parts)

    def _publish(self) -> None:
        with self._lock:
            if not self._stop.is_set():
                self._sock.send_multipart([b"T", encode_ticks(self.batch())])

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            self._publish()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close(linger=0)


def account_at_risk(
    account_id: str,
    instrument: str,
    direction: str,
    lots: float,
    price: float,
    risk: float,
    table: Any,
) -> dict[str, Any]:
    """A snapshot whose risk degree at `price` is exactly `risk` (cost = price, no profit yet)."""
    spec = table.spec(instrument)
    margin = price * lots * spec.multiplier * spec.margin_rate
    return {
        "type": "snapshot",
        "account_id": account_id,
        "pre_balance": margin / risk,
        "group_path": "grpA/sub1/unit01",
        "positions": [
            {"instrument": instrument, "direction": direction, "volume": lots, "cost_price": price}
        ],
    }


@dataclass
class Harness:
    cfg: config.Config
    market: ScriptedMarket
    bus: AccountBus
    sink: ProviderSink
    orders: SimOrderGateway
    system: System
    journal: Path
    _push: Any = field(default=None, repr=False)

    def send_accounts(self, records: list[dict[str, Any]]) -> None:
        if self._push is None:
            self._push = zmq.Context.instance().socket(zmq.PUSH)
            self._push.setsockopt(zmq.LINGER, 1000)
            self._push.connect(self.cfg.accounts.inbound_endpoint)
        self._push.send(encode_records("account_events", records))

    def stop(self) -> None:
        stop_system(self.system)
        for part in (self.orders, self.bus, self.sink):
            part.stop()
        self.market.stop()
        if self._push is not None:
            self._push.close(linger=0)


# An order loop that is watched closely: reports asked for after 0.5 s, accounts re-marked every
# 0.3 s, no repricing within a test's time (the restart and refusal tests count every order).
WATCHED_ORDERS = {"reprice_after_s": 120.0, "query_after_s": 0.5, "mark_interval_s": 0.3}


def start_order_loop(tmp: Path, **overrides: Any) -> Harness:
    """One rb contract at 3,000 through the closed loop, its orders watched closely."""
    return start_harness(tmp, {"rb2601": 3000.0}, ["rb"], orders=WATCHED_ORDERS, **overrides)


def start_harness(
    tmp: Path, prices: dict[str, float], commodities: list[str], **overrides: Any
) -> Harness:
    ep = {k: free_tcp_endpoint() for k in ("market", "pub", "snap", "inbound", "orders", "reports")}
    data: dict[str, Any] = {
        # No market rules: the scripted prices jump by design, and whether a jump alerts would
        # depend on the time of day (sessions). Market rules have tests of their own.
        "market": {
            "flush_ms": 50,
            "feeds": [{"name": "scripted", "endpoint": ep["market"]}],
            "rules": [],
        },
        "accounts": {
            "shards": 2,
            "endpoint": ep["pub"],
            "snapshot_endpoint": ep["snap"],
            "inbound_endpoint": ep["inbound"],
            "flush_ms": 50,
        },
        "orders": {"endpoint": ep["orders"], "reports_endpoint": ep["reports"]},
        "books": {"commodities": commodities},
        "audit": {"path": str(tmp / "journal.sqlite"), "batch_ms": 50},
        "notifier": {"max_attempts": 4, "base_delay_s": 0.05, "max_delay_s": 0.2},
        # start_system deploys the console on Serve when enabled; tests that use it pass
        # console=tests.console_util.console_table(...), the rest run without one.
        "console": {"enabled": False},
        # issue 13 item 5: without a roster no one decides; a harness that gives none runs the
        # demo's open policy (unsigned, any name). A roster test sets demo_open = false and signs.
        "approval": {"demo_open": True},
    }
    for key, value in overrides.items():  # tables merge key by key, the rest replaces
        data[key] = {**data[key], **value} if isinstance(data.get(key), dict) else value
    cfg = config.from_dict(data, source="<test>")
    sink = ProviderSink(
        port=0,
        twilio_account_sid=cfg.sink.twilio_account_sid,
        twilio_auth_token=cfg.sink.twilio_auth_token,
        wecom_keys=(cfg.sink.wecom_key,),
    )
    url = sink.start()
    cfg = replace(cfg, channels=sink_channels(url, cfg))
    market = ScriptedMarket(ep["market"], prices)
    bus = AccountBus(ep["inbound"], ep["pub"], ep["snap"]).start()
    table = load_contract_table()
    orders = SimOrderGateway(ep["orders"], ep["reports"], [ep["market"]], ep["inbound"], table)
    orders.start()
    prefix = f"t{uuid.uuid4().hex[:6]}."
    system = start_system(cfg, prefix=prefix)
    return Harness(cfg, market, bus, sink, orders, system, tmp / "journal.sqlite")
