"""CTP tests drive the real openctp-ctp structs and SPI subclasses without a network; they skip,
with the reason, only where the library cannot load (not installed, or no zh_CN.GB18030)."""

from __future__ import annotations

import pytest

from gateways import ctp
from gateways.ctp.config import Credentials

REASON = ctp.unavailable_reason()
needs_ctp = pytest.mark.skipif(bool(REASON), reason=f"CTP library cannot load: {REASON}")


@pytest.fixture(scope="session")
def apis():
    if REASON:
        pytest.skip(f"CTP library cannot load: {REASON}")
    return ctp.load()


def fill(struct, **values):
    for key, value in values.items():
        setattr(struct, key, value)
    return struct


@pytest.fixture
def rsp(apis):
    """rsp(code, msg) -> a real CThostFtdcRspInfoField (code 0: success)."""
    _, td = apis

    def make(code: int = 0, msg: str = "") -> object:
        return fill(td.CThostFtdcRspInfoField(), ErrorID=code, ErrorMsg=msg)

    return make


@pytest.fixture
def bus():
    """A real account bus and a client reading every bucket."""
    from gateways.accounts.bus import AccountBus, AccountBusClient
    from rules.sharding import BUCKETS
    from tests.zmq_util import free_tcp_endpoint

    endpoints = (free_tcp_endpoint(), free_tcp_endpoint(), free_tcp_endpoint())
    with AccountBus(*endpoints) as running:
        with AccountBusClient(running.pub_endpoint, running.snapshot_endpoint,
                              list(range(BUCKETS))) as client:  # fmt: skip
            yield running, client


def read_records(client, n, timeout=5.0):
    """Records from the bus until there are n (or the deadline)."""
    from tests.zmq_util import wait_until

    got: list[dict] = []
    wait_until(lambda: bool(got.extend(client.poll(20))) or len(got) >= n, timeout=timeout)
    return got


class Recorder:
    """Stands at the network edge, where no front is reachable offline: every request the
    session makes is still made on the real API (which answers -1: not connected), and
    recorded with its struct; the return code the front would give is scripted."""

    def __init__(self, session_api=lambda: None):
        self.calls: list[tuple[str, object, int]] = []
        self.codes: dict[str, list[int]] = {}
        self.api = session_api

    def __call__(self, name, req, rid):
        api = self.api()
        if api is not None:
            assert getattr(api, name)(req, rid) == -1  # the real call accepts the struct
        self.calls.append((name, req, rid))
        codes = self.codes.get(name)
        return codes.pop(0) if codes else 0

    def last(self, name):
        return next(c for c in reversed(self.calls) if c[0] == name)

    def names(self):
        return [c[0] for c in self.calls]


@pytest.fixture
def session(apis, bus, tmp_path):
    """A real TraderSession (real TraderApi on an unreachable front) publishing to the bus;
    `s.test` holds the request recorder, the events raised and fengkong's figures to compare."""
    from gateways.ctp.spi import BusPush
    from gateways.ctp.trader import TraderSession
    from tests.ctp import world

    bus_, _client = bus
    push = BusPush(bus_.inbound_endpoint)
    events: list = []
    own: dict = {}
    holder: dict = {}
    rec = Recorder(lambda: holder["s"].api)
    s = TraderSession(world.investor(), push, tmp_path, credentials=Credentials(world.SECRET_PW, world.SECRET_AC),
                      own_view=lambda a: own.get(a), on_events=events.extend,
                      send_request=rec)  # fmt: skip
    holder["s"] = s
    s.start(connect=True, thread=False)  # a real TraderApi on an unreachable front
    s.test = {"rec": rec, "events": events, "own": own}
    yield s
    s.stop()
    push.close()
