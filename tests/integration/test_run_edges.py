"""`fengkong run` is self-sufficient: the supervisor starts the account bus, the simulated market
and the order gateway the config names as actors, each binds on its node and publishes its
endpoints, the risk loop is wired to those (every account reaches a shard, ticks reach the
feed), and each actor's environment holds only its own secrets (issue 13 item 7)."""

from __future__ import annotations

import os
import uuid
from typing import Any

from app.run_command import resolve_journal
from app.system_actor import SystemSupervisor, supervisor_name
from infra import config
from infra.audit import AuditStore
from infra.cluster import role_secrets
from tests.zmq_util import free_tcp_endpoint, wait_until

TOKEN_ENV = "FK_TEST_TWILIO_TOKEN_" + uuid.uuid4().hex[:6].upper()
SID_ENV = "FK_TEST_TWILIO_SID_" + uuid.uuid4().hex[:6].upper()
SEAL_ENV = "FK_TEST_SEAL_" + uuid.uuid4().hex[:6].upper()  # approval secrets: the Executor's
PERSON_ENV = "FK_TEST_DESK_" + uuid.uuid4().hex[:6].upper()


def _port(ep: str) -> str:
    return "tcp://*:" + ep.rsplit(":", 1)[1]


def _config(tmp_path) -> config.Config:
    ep = {k: free_tcp_endpoint() for k in ("market", "pub", "snap", "inbound", "orders", "reports")}
    secrets = tmp_path / "secrets.env"
    secrets.write_text(
        f"# channel secrets\n{SID_ENV}=AC123\n{TOKEN_ENV}='tok-secret'\n"
        f"{SEAL_ENV}=seal-secret\n{PERSON_ENV}=desk-secret\n"
    )
    data: dict[str, Any] = {
        "cluster": {
            "account_bus": True,
            "market": "sim",
            "order_gateway": "sim",
            "secrets_file": str(secrets),
        },  # fmt: skip
        "market": {"feeds": [{"name": "sim", "endpoint": _port(ep["market"])}], "rules": []},
        "accounts": {
            "shards": 2,
            "endpoint": _port(ep["pub"]),
            "snapshot_endpoint": _port(ep["snap"]),
            "inbound_endpoint": _port(ep["inbound"]),
        },
        "orders": {"endpoint": _port(ep["orders"]), "reports_endpoint": _port(ep["reports"])},
        "sim": {"accounts": 300, "contracts": 6, "auto_approve_as": ""},
        "channels": [
            {
                "name": "sms",
                "type": "twilio_sms",
                "base_url": "http://127.0.0.1:9",
                "account_sid_env": SID_ENV,
                "auth_token_env": TOKEN_ENV,
                "from": "+15005550006",
                "to": ["+8613800138000"],
                "timeout": 0.5,
            },
        ],  # fmt: skip
        "audit": {"path": str(tmp_path / "journal.sqlite"), "batch_ms": 50},
        "approval": {
            "seal_key_env": SEAL_ENV,
            "users": [{"name": "desk", "roles": ["risk_desk"], "secret_env": PERSON_ENV}],
        },
        # Serve keeps the port it first started on for the whole test session: a console on
        # the default port here would leave the console tests' port (console_util) unserved
        "console": {"enabled": False},
    }
    return resolve_journal(config.from_dict(data, source="<test>"), "t-edges")


def _env_of(ray, name: str, var: str) -> str | None:
    """The variable in an edge actor's process (the edges are not shells: `__ray_call__`)."""
    actor = ray.get_actor(name)
    return ray.get(actor.__ray_call__.remote(lambda _self: os.environ.get(var)), timeout=60)


def _holds(ray, name: str, var: str) -> bool:
    """A shell actor answers only its public API (issue 13): `env_held` names, never values."""
    return ray.get(ray.get_actor(name).env_held.remote([var]), timeout=60) == [var]


def test_run_starts_the_edges_wires_the_loop_and_scopes_secrets(ray_local, tmp_path) -> None:
    ray = ray_local
    cfg = _config(tmp_path)
    secrets = role_secrets(cfg)
    assert secrets == {
        "Notifier": {SID_ENV: "AC123", TOKEN_ENV: "tok-secret"},
        "Executor": {SEAL_ENV: "seal-secret", PERSON_ENV: "desk-secret"},
    }
    assert TOKEN_ENV not in os.environ  # the workers could not inherit it from the test
    prefix = f"e{uuid.uuid4().hex[:6]}."
    sup = SystemSupervisor.options(name=supervisor_name(prefix), lifetime="detached").remote(
        cfg, prefix, "t-edges", secrets
    )
    try:
        status = ray.get(sup.status.remote(), timeout=240)
        names = {r["name"] for r in status["actors"]}
        assert {f"{prefix}{r}" for r in ("AccountBus", "SimMarket", "OrderGateway")} <= names
        eps = status["endpoints"]
        assert set(eps) == {
            "accounts.endpoint", "accounts.snapshot_endpoint", "accounts.inbound_endpoint",
            "orders.endpoint", "orders.reports_endpoint", "market.feeds.sim",
        }  # fmt: skip
        node_ip = status["node_ip"]
        assert all(ep.startswith(f"tcp://{node_ip}:") for ep in eps.values()), eps
        assert eps["accounts.endpoint"].endswith(cfg.accounts.endpoint.rsplit(":", 1)[1])

        shards = [ray.get_actor(f"{prefix}AccountShard.{k}") for k in range(2)]
        feed = ray.get_actor(f"{prefix}MarketFeed.sim")

        def loaded() -> bool:
            got = ray.get([s.stats.remote() for s in shards], timeout=30)
            return sum(int(s.get("accounts", 0)) for s in got) == 300

        assert wait_until(loaded, timeout=90, interval=0.5)
        assert wait_until(
            lambda: ray.get(feed.stats.remote(), timeout=30).get("ticks", 0) > 0, timeout=60
        )
        health = ray.get(sup.check_health.remote(), timeout=60)
        assert not [h for h in health if "unreachable" in h], health

        assert _holds(ray, f"{prefix}Notifier", TOKEN_ENV)
        for role in ("Executor", "AuditLog", "Correlator", "AccountShard.0"):
            assert not _holds(ray, f"{prefix}{role}", TOKEN_ENV), role
        # the approval secrets: the Executor's alone (issue 14)
        assert _holds(ray, f"{prefix}Executor", SEAL_ENV)
        assert _holds(ray, f"{prefix}Executor", PERSON_ENV)
        for role in ("Notifier", "AuditLog", "Correlator", "AccountShard.0"):
            assert not _holds(ray, f"{prefix}{role}", SEAL_ENV), role
            assert not _holds(ray, f"{prefix}{role}", PERSON_ENV), role
        assert _env_of(ray, supervisor_name(prefix), SEAL_ENV) is None
        assert _env_of(ray, f"{prefix}SimMarket", TOKEN_ENV) is None
        assert _env_of(ray, supervisor_name(prefix), TOKEN_ENV) is None
    finally:
        print(ray.get(sup.stop.remote(), timeout=120))
        ray.kill(sup, no_restart=True)
    assert wait_until(  # a kill is asynchronous: the name goes when the actor is gone
        lambda: not [n for n in ray.util.list_named_actors() if str(n).startswith(prefix)],
        timeout=60,
        interval=0.2,
    )
    store = AuditStore(cfg.audit.path)
    (started,) = store.query(kind="system.started")
    assert started["endpoints"] == eps and started["key"] == "t-edges"
    assert not [r for r in store.query() if "tok-secret" in str(r)]  # never in the journal
    assert not [r for r in store.query() if "seal-secret" in str(r) or "desk-secret" in str(r)]


def test_an_edge_that_cannot_bind_fails_the_start_in_one_line_and_leaves_nothing(
    ray_local, tmp_path
) -> None:
    import socket

    ray = ray_local
    cfg = _config(tmp_path)
    taken = socket.socket()
    taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)
    taken.bind(("0.0.0.0", int(cfg.accounts.inbound_endpoint.rsplit(":", 1)[1])))
    taken.listen()
    prefix = f"f{uuid.uuid4().hex[:6]}."
    sup = SystemSupervisor.options(name=supervisor_name(prefix), lifetime="detached").remote(
        cfg, prefix, "t-fail", {}
    )
    try:
        status = ray.get(sup.status.remote(), timeout=240)
        assert status["failed"].startswith("RuntimeError: edge AccountBus did not start"), status
        assert "\n" not in status["failed"]
        assert [r["name"] for r in status["actors"]] == []  # nothing of it left running
        assert ray.get(sup.reconcile.remote(), timeout=60) == []  # and nothing rebuilt
    finally:
        ray.kill(sup, no_restart=True)
        taken.close()
