"""The CTP edge as a placed actor on a real local Ray: it comes up offline (unreachable fronts
must not hang it), owns the account bus, reports its sessions, and stops cleanly."""

from __future__ import annotations

import dataclasses

import pytest
import zmq

from actors.ctp_ingest import start_ctp
from gateways.ctp.config import register
from infra import config as config_mod
from tests.zmq_util import free_tcp_endpoint, wait_until


@pytest.mark.usefixtures("apis")
def test_ctp_ingest_actor_starts_offline_and_owns_the_account_bus(ray_local, tmp_path):
    register()
    feed = free_tcp_endpoint()
    cfg = config_mod.from_dict({
        "market": {"feeds": [{"name": "ctp", "endpoint": feed}]},
        "accounts": {"endpoint": free_tcp_endpoint(), "snapshot_endpoint": free_tcp_endpoint(),
                     "inbound_endpoint": free_tcp_endpoint()},
        "ctp": {"flow_dir": str(tmp_path / "flow"),
                "md": {"fronts": ["tcp://127.0.0.1:1"], "feed": "ctp", "instruments": ["rb2610"]},
                "investors": [{"name": "a", "fronts": ["tcp://127.0.0.1:1"], "broker_id": "9999",
                               "user_id": "u1", "app_id": "x", "reconcile_s": 0}]},
    })  # fmt: skip
    (actor,) = start_ctp(cfg, "fengkong.ctptest.", None)
    try:
        status = ray_local.get(actor.status.remote(), timeout=60)
        assert status["md"]["instruments"] == 1 and status["md"]["connects"] == 0
        assert status["sessions"]["u1"]["state"] == "connecting"
        assert status["orders"] is None  # routing is off by default
        # the bus it owns takes records (the account bus's inbound PULL is bound)
        sock = zmq.Context.instance().socket(zmq.PUSH)
        sock.connect(cfg.accounts.inbound_endpoint)
        from infra.codec import encode_records

        sock.send(
            encode_records(
                "account_events",
                [{"type": "deposit", "account_id": "u1", "amount": 1.0, "ts": 0.0}],
            )
        )
        assert wait_until(
            lambda: ray_local.get(actor.status.remote())["account_bus"]["received"] == 1
        )
        sock.close(linger=0)
        assert (tmp_path / "flow" / "md").is_dir() and (tmp_path / "flow" / "td_a").is_dir()
    finally:
        ray_local.get(actor.stop.remote(), timeout=30)
        ray_local.kill(actor, no_restart=True)
    no_ctp = dataclasses.replace(cfg, edges={})
    assert start_ctp(no_ctp, "fengkong.ctptest.", None) == []
