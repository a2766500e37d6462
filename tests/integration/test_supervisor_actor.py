"""The supervisor actor owns a deployed system: status names every actor with its node, an actor
killed past its restarts makes it rebuild the system (journaled), stop takes everything down."""

from __future__ import annotations

import uuid
from typing import Any

from app.run_command import resolve_journal
from app.system_actor import SystemSupervisor, supervisor_name
from infra import config
from infra.audit import AuditStore
from tests.console_util import console_table, is_up, wait_up
from tests.zmq_util import free_tcp_endpoint, wait_until


def _config(tmp_path) -> config.Config:
    ep = {k: free_tcp_endpoint() for k in ("market", "pub", "snap", "inbound", "orders", "reports")}
    data: dict[str, Any] = {
        "market": {"feeds": [{"name": "sim", "endpoint": ep["market"]}], "rules": []},
        "accounts": {
            "shards": 2,
            "endpoint": ep["pub"],
            "snapshot_endpoint": ep["snap"],
            "inbound_endpoint": ep["inbound"],
        },
        "orders": {"endpoint": ep["orders"], "reports_endpoint": ep["reports"]},
        "audit": {"path": str(tmp_path / "journal.sqlite"), "batch_ms": 50},
        "cluster": {"reconcile_s": 1.0},  # the rebuild starts within a second of the loss
        # the supervisor deploys the console with the system (issue 16)
        "console": console_table(tmp_path, {"li": ("viewer", "li-password-1")}),
    }
    return resolve_journal(config.from_dict(data, source="<test>"), "t-run")


def _kinds(path: str) -> list[str]:
    return [r["kind"] for r in AuditStore(path).query(kind="system.*")]


def test_status_rebuild_after_a_permanent_loss_and_stop(ray_local, tmp_path) -> None:
    ray = ray_local
    cfg = _config(tmp_path)
    prefix = f"s{uuid.uuid4().hex[:6]}."
    sup = SystemSupervisor.options(name=supervisor_name(prefix), lifetime="detached").remote(
        cfg, prefix, "t-run"
    )
    try:
        status = ray.get(sup.status.remote(), timeout=180)
        names = {r["name"]: r for r in status["actors"]}
        assert {f"{prefix}AuditLog", f"{prefix}AccountShard.0", f"{prefix}AccountShard.1"} <= set(
            names
        )
        assert all(r["state"] == "alive" and r["node_ip"] for r in names.values()), names
        assert status["journal"] == cfg.audit.path and status["run_id"] == "t-run"
        assert status["console_url"] == cfg.console.url
        wait_up(cfg.console.url)  # deployed next to the actors, on Serve

        ray.kill(ray.get_actor(f"{prefix}Correlator"), no_restart=True)  # dead past restarts
        assert wait_until(
            lambda: ray.get(sup.status.remote(), timeout=60)["rebuilds"] >= 1, timeout=120
        )
        after = {r["name"]: r["state"] for r in ray.get(sup.status.remote())["actors"]}
        assert after.get(f"{prefix}Correlator") == "alive", after
        assert wait_until(lambda: "system.rebuilt" in _kinds(cfg.audit.path), timeout=30)
        wait_up(cfg.console.url)  # and redeployed with the rebuilt system
    finally:
        print(ray.get(sup.stop.remote(), timeout=120))
        ray.kill(sup, no_restart=True)
    assert not [n for n in ray.util.list_named_actors() if str(n).startswith(prefix)]
    assert wait_until(lambda: not is_up(cfg.console.url), timeout=30)  # the console went too
    assert _kinds(cfg.audit.path)[0] == "system.started"
    assert _kinds(cfg.audit.path)[-1] == "system.stopped"
