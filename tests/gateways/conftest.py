"""Fixtures of the edge tests: a running account bus on free ports and a PUSH socket into it.

One PUSH socket per test: ZeroMQ keeps order per connection only, so a test that needs its records
applied in order sends them through this one socket.
"""

from __future__ import annotations

import pytest
import zmq

from gateways.accounts.bus import AccountBus
from tests.zmq_util import free_tcp_endpoint


@pytest.fixture
def bus():
    endpoints = (free_tcp_endpoint(), free_tcp_endpoint(), free_tcp_endpoint())
    with AccountBus(*endpoints) as running:
        yield running


@pytest.fixture
def push(bus):
    sock = zmq.Context.instance().socket(zmq.PUSH)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(bus.inbound_endpoint)
    yield sock
    sock.close()
