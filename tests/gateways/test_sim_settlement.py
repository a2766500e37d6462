"""The simulation's day boundary: the simulated exchange settles at its last prices and the
simulated accounts send one settlement record over the real account bus (ZeroMQ), after
their snapshots, to every client once."""

from __future__ import annotations

import time

from gateways.accounts.bus import AccountBus, AccountBusClient
from gateways.accounts.wire import record_problem
from gateways.sim.accounts import SimAccountSource
from gateways.sim.exchange import SimExchange, main_instruments
from infra.specs import load_contract_table
from rules.engine.alerts import next_trading_day
from rules.sharding import buckets_of_shard
from tests.zmq_util import free_tcp_endpoint


def test_sim_day_boundary_sends_one_settlement_after_the_snapshots():
    table = load_contract_table()
    instruments = main_instruments(table, 6)
    exchange = SimExchange(free_tcp_endpoint(), instruments, table, seed=3)
    for _ in range(20):
        exchange.step()
    endpoints = (free_tcp_endpoint(), free_tcp_endpoint(), free_tcp_endpoint())
    with AccountBus(*endpoints) as bus:
        source = SimAccountSource(bus.inbound_endpoint, instruments, table, exchange.prices(),
                                  n_accounts=50, event_rate_hz=0)  # fmt: skip
        try:
            source.publish_snapshots()
            last = exchange.prices()
            record = source.settle(exchange.settle(), "20260105", next_trading_day("20260105"))
        finally:
            source.stop()
        assert record_problem(record) is None
        assert record["prices"] == last and record["next_trading_day"] == "20260106"
        for name in instruments:  # the next day's previous settlement and limits
            assert exchange.pre_settlement(name) == last[name]
            upper, lower = exchange.limits(name)
            assert lower < last[name] < upper
        with AccountBusClient(bus.pub_endpoint, bus.snapshot_endpoint, buckets_of_shard(0, 2)) as c:
            got: list[dict] = []
            deadline = time.monotonic() + 10
            while not any(r["type"] == "settlement" for r in got) and time.monotonic() < deadline:
                got += c.poll(100)
            got += c.poll(100)
    kinds = [r["type"] for r in got]
    assert kinds.count("settlement") == 1 and kinds[-1] == "settlement"
    assert set(kinds[:-1]) == {"snapshot"} and len(kinds) > 1
