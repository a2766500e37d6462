"""A bus restarted in place (its node came back: same address, a new empty log) is noticed by
its clients through the epoch of its heads frames: they start over from the new log's
beginning instead of dropping its records as duplicates (bseq counts from 1 again)."""

from __future__ import annotations

import time

import zmq

from gateways.accounts.bus import AccountBus, AccountBusClient
from gateways.accounts.wire import decode_heads, decode_heads_epoch, encode_heads
from infra.codec import encode_records
from rules.sharding import BUCKETS
from tests.zmq_util import free_tcp_endpoint, wait_until

ALL = list(range(BUCKETS))


def _deposits(ids: list[str], amount: float) -> list[dict]:
    return [{"type": "deposit", "account_id": a, "amount": amount, "ts": time.time()} for a in ids]


def _push(endpoint: str, records: list[dict]) -> None:
    sock = zmq.Context.instance().socket(zmq.PUSH)
    sock.setsockopt(zmq.LINGER, 2000)
    sock.connect(endpoint)
    sock.send(encode_records("account_events", records))
    sock.close()


def test_heads_carry_the_epoch_and_old_frames_read_as_epoch_zero() -> None:
    import numpy as np

    heads = np.arange(BUCKETS, dtype=np.uint64)
    got, epoch = decode_heads_epoch(encode_heads(heads, 77))
    assert epoch == 77 and (got == heads).all()
    assert decode_heads_epoch(encode_heads(heads))[1] == 0
    assert (decode_heads(encode_heads(heads, 5)) == heads).all()


def test_a_client_that_outlives_its_bus_takes_the_new_log_from_its_start() -> None:
    endpoints = (free_tcp_endpoint(), free_tcp_endpoint(), free_tcp_endpoint())
    ids = [f"ACC{i:06d}" for i in range(40)]
    got: list[dict] = []
    first = AccountBus(*endpoints).start()
    client = AccountBusClient(first.pub_endpoint, first.snapshot_endpoint, ALL).connect()
    try:
        _push(first.inbound_endpoint, _deposits(ids, 100.0))
        assert wait_until(lambda: len(got.__iadd__(client.poll(50))) >= 40, 10)
        assert wait_until(lambda: not client.poll(50) and client._epoch == first.epoch, 5)
        first.stop()
        second = AccountBus(*endpoints).start()  # same address, empty log, new epoch
        try:
            assert second.epoch != first.epoch
            _push(second.inbound_endpoint, _deposits(ids, 7.0))
            again: list[dict] = []
            assert wait_until(lambda: len(again.__iadd__(client.poll(50))) >= 40, 15)
            assert sorted(r["account_id"] for r in again) == sorted(ids)
            assert all(r["amount"] == 7.0 for r in again)
            assert client.stats["bus_restarts"] == 1
            assert not client.poll(600)  # each record of the new log exactly once
        finally:
            second.stop()
    finally:
        client.close()
