"""`fengkong run --detach` from the edge host on the 3-node namespace cluster, with a config that
names its edges and says nowhere where they land (no 127.0.0.1, no hand-written bus or bridge):
the supervisor starts the account bus, the simulated market and the order gateway, shards land
on the `fengkong_shard` nodes (never the head), every account reaches a shard, a shock alerts
through a channel whose secret only the Notifier holds, the shard node w1 dies mid-shock, and
the system recovers: alerts flow again for the accounts of the lost shard (the seconds are
printed and in docs/deploy.md), every account is back, nothing journaled is lost, no
notification and no order is duplicated. `fengkong stop` takes it down."""

from __future__ import annotations

import json
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from app.system_health import reachable
from infra.audit import AuditStore
from rules.sharding import shard_of
from tests.cluster.netns import NetnsCluster
from tests.zmq_util import wait_until

pytestmark = pytest.mark.cluster

N_ACCOUNTS, N_SHARDS = 2000, 2
SINK_PORT, WECOM_KEY = 21790, "drill-robot-key"
RECOVERY_DEADLINE_S = 90.0  # a functional deadline for the wait; the bound is 10 s
DRILL = Path(__file__).with_name("drill.py")


def _cli(c: NetnsCluster, *argv: str, timeout: float = 300):
    edge = c.hosts["edge"]
    cmd = [c.python, "-m", "app.cli", argv[0], "--config", str(edge.workdir / "fk.toml"),
           "--address", c.client_address, *argv[1:]]  # fmt: skip
    return edge.run(cmd, c.env, timeout)


def _config(c: NetnsCluster) -> None:
    edge = c.hosts["edge"]
    (edge.workdir / "secrets.env").write_text(f"FK_DRILL_WECOM_KEY={WECOM_KEY}\n")
    (edge.workdir / "fk.toml").write_text(
        f"""
[cluster]
account_bus = true
market = "sim"
order_gateway = "sim"
secrets_file = "secrets.env"
[audit]
path = "{c.root}/journal/journal.sqlite"
[accounts]
shards = {N_SHARDS}
endpoint = "tcp://*:21711"
snapshot_endpoint = "tcp://*:21712"
inbound_endpoint = "tcp://*:21713"
[orders]
endpoint = "tcp://*:21721"
reports_endpoint = "tcp://*:21722"
[[market.feeds]]
name = "sim"
endpoint = "tcp://*:21701"
[sim]
accounts = {N_ACCOUNTS}
contracts = 10
auto_approve_as = ""
[[channels]]
name = "desk"
type = "wecom"
base_url = "http://{edge.ip}:{SINK_PORT}"
key_env = "FK_DRILL_WECOM_KEY"
timeout = 3.0
"""
    )


def _lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def _phase(path: Path, phase: str) -> dict | None:
    return next((x for x in _lines(path) if x["phase"] == phase), None)


def _alerts_of(journal: str, shards: set[int], after: float) -> list[dict]:
    """Alert records of accounts held by `shards`, journaled after `after` (epoch s)."""
    if not Path(journal).exists():
        return []
    store = AuditStore(journal)
    try:
        return [
            r for r in store.query(kind="alert", since=after)
            if str(r["key"]).startswith("ACC") and shard_of(r["key"], N_SHARDS) in shards
        ]  # fmt: skip
    finally:
        store.close()


def test_run_from_the_edge_survives_a_shard_node_lost_mid_shock(netns_cluster) -> None:
    c = netns_cluster
    edge = c.hosts["edge"]
    ips = {name: c.hosts[name].ip for name in ("head", "w1", "w2")}
    _config(c)
    edge.popen([c.python, "-m", "gateways.sim.provider_sink", "--host", edge.ip,
                "--port", str(SINK_PORT), "--wecom-key", WECOM_KEY, "--rate-limit", "1000000"],
               c.env, log="sink.log")  # fmt: skip
    assert wait_until(lambda: reachable(f"tcp://{edge.ip}:{SINK_PORT}"), timeout=60, interval=0.2)
    journal = f"{c.root}/journal/journal.sqlite"
    out = edge.workdir / "drill.jsonl"
    done = _cli(c, "run", "--detach")
    try:
        assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
        assert "127.0.0.1" not in done.stdout, done.stdout  # every endpoint is a node's address
        edge.popen([c.python, str(DRILL), c.client_address, "fengkong.", str(out),
                    str(N_ACCOUNTS), str(N_SHARDS)], c.env, log="drill.log")  # fmt: skip
        assert wait_until(lambda: _phase(out, "ready") is not None, timeout=300, interval=0.5), (
            edge.workdir / "drill.log"
        ).read_text()[-3000:]
        ready = _phase(out, "ready")
        assert sum(ready["accounts"]) == N_ACCOUNTS, ready["accounts"]
        where = {r["name"]: r["node_ip"] for r in ready["actors"]}
        shard_ips = {k: where[f"fengkong.AccountShard.{k}"] for k in range(N_SHARDS)}
        assert set(shard_ips.values()) <= {ips["w1"], ips["w2"]}  # never the head
        assert where["fengkong.AuditLog"] == ips["w2"] and where["fengkong.AccountBus"] == ips["w2"]
        assert where["fengkong.SimMarket"] == ips["head"]
        lost = {k for k, ip in shard_ips.items() if ip == ips["w1"]}
        assert lost, f"SPREAD left no shard on w1: {shard_ips}"

        assert wait_until(lambda: _phase(out, "shocked") is not None, timeout=60, interval=0.1)
        c.hosts["w1"].kill()  # power off, mid-shock (the move takes 8 s)
        killed = time.time()
        print(f"killed w1 {killed - _phase(out, 'shocked')['t']:.1f} s into the shock; lost {lost}")

        def back() -> bool:
            ticks = [x for x in _lines(out) if x["phase"] == "tick" and x["t"] > killed]
            return any(None not in x["accounts"] and sum(x["accounts"]) == N_ACCOUNTS
                       for x in ticks)  # fmt: skip

        assert wait_until(lambda: bool(_alerts_of(journal, lost, killed)),
                          timeout=RECOVERY_DEADLINE_S, interval=0.25)  # fmt: skip
        first = min(r["ts"] for r in _alerts_of(journal, lost, killed))
        recovery_s = first - killed
        print(f"recovery: alerts of the lost shard's accounts {recovery_s:.1f} s after w1 died")
        assert wait_until(back, timeout=RECOVERY_DEADLINE_S, interval=0.5), _lines(out)[-3:]
        after = next(x for x in _lines(out) if x["phase"] == "tick" and x["t"] > killed
                     and None not in x["accounts"] and sum(x["accounts"]) == N_ACCOUNTS)  # fmt: skip
        print(f"every account back on a shard {after['t'] - killed:.1f} s after w1 died")
        status = _cli(c, "status", timeout=180)
        assert status.returncode == 0, status.stdout + status.stderr
        shards = [x.split() for x in status.stdout.splitlines() if "AccountShard" in x]
        assert all(r[1] == ips["w2"] and r[2] == "alive" for r in shards), status.stdout

        (edge.workdir / "drill.jsonl.stop").write_text("")
        assert wait_until(lambda: _phase(out, "done") is not None, timeout=180, interval=0.5)
        final = _phase(out, "done")
        assert final["gateway"].get("orders", 0) > 0, final  # approved actions became orders
        assert final["gateway"].get("duplicates", 0) == 0, final
    finally:
        stopped = _cli(c, "stop", timeout=180)
        c.revive("w1")  # the cluster is whole again for whoever comes next
    assert stopped.returncode == 0, (stopped.stdout + stopped.stderr)[-2000:]

    store = AuditStore(journal)
    try:
        assert store.verify() == []  # the chain is whole: nothing journaled was lost
        kinds = [r["kind"] for r in store.query(kind="system.*")]
        assert kinds[0] == "system.started" and kinds[-1] == "system.stopped", kinds
        assert store.query(kind="alert")
        for kind in ("notification.delivered", "order"):  # an alert id may be journaled again
            # when a stage stops a repeat; a delivery or an order never
            refs = Counter(r["ref"] for r in store.query(kind=kind))
            assert refs and not [r for r, n in refs.items() if n > 1], (kind, refs.most_common(3))
        delivered = len(store.query(kind="notification.delivered"))
    finally:
        store.close()
    url = f"http://{edge.ip}:{SINK_PORT}/_sink/messages"
    with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 (the drill's own sink)
        messages = json.loads(resp.read())
    bodies = Counter((m.get("recipient"), m.get("body")) for m in messages)
    assert messages and not [b for b, n in bodies.items() if n > 1]  # no page sent twice
    print(f"{len(messages)} pages at the sink, {delivered} deliveries journaled")
