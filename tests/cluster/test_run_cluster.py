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

import pytest

from app.system_health import reachable
from infra.audit import AuditStore
from tests.cluster.drill_host import (
    SINK_PORT,
    WECOM_KEY,
    alerts_of,
    all_back_after,
    cli_until,
    lines,
    phase,
    start_drill,
    write_config,
)
from tests.zmq_util import wait_until

pytestmark = pytest.mark.cluster

N_ACCOUNTS, N_SHARDS = 2000, 2
RECOVERY_DEADLINE_S = 90.0  # a functional deadline for the wait; the bound is 10 s


def test_run_from_the_edge_survives_a_shard_node_lost_mid_shock(netns_cluster) -> None:
    c = netns_cluster
    edge = c.hosts["edge"]
    ips = {name: c.hosts[name].ip for name in ("head", "w1", "w2")}
    journal = write_config(c, N_ACCOUNTS, N_SHARDS)
    edge.popen([c.python, "-m", "gateways.sim.provider_sink", "--host", edge.ip,
                "--port", str(SINK_PORT), "--wecom-key", WECOM_KEY, "--rate-limit", "1000000"],
               c.env, log="sink.log")  # fmt: skip
    assert wait_until(lambda: reachable(f"tcp://{edge.ip}:{SINK_PORT}"), timeout=60, interval=0.2)
    done = cli_until(c, "run", "--detach")
    try:
        assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
        assert "127.0.0.1" not in done.stdout, done.stdout  # every endpoint is a node's address
        out = start_drill(c, N_ACCOUNTS, N_SHARDS)
        assert wait_until(lambda: phase(out, "ready") is not None, timeout=300, interval=0.5), (
            edge.workdir / "drill.log"
        ).read_text()[-3000:]
        ready = phase(out, "ready")
        assert sum(ready["accounts"]) == N_ACCOUNTS, ready["accounts"]
        where = {r["name"]: r["node_ip"] for r in ready["actors"]}
        shard_ips = {k: where[f"fengkong.AccountShard.{k}"] for k in range(N_SHARDS)}
        assert set(shard_ips.values()) <= {ips["w1"], ips["w2"]}  # never the head
        assert where["fengkong.AuditLog"] == ips["w2"] and where["fengkong.AccountBus"] == ips["w2"]
        assert where["fengkong.SimMarket"] == ips["head"]
        lost = {k for k, ip in shard_ips.items() if ip == ips["w1"]}
        assert lost, f"SPREAD left no shard on w1: {shard_ips}"

        assert wait_until(lambda: phase(out, "shocked") is not None, timeout=60, interval=0.1)
        c.hosts["w1"].kill()  # power off, mid-shock (the move takes 8 s)
        killed = time.time()
        print(f"killed w1 {killed - phase(out, 'shocked')['t']:.1f} s into the shock; lost {lost}")

        assert wait_until(lambda: bool(alerts_of(journal, lost, killed, N_SHARDS)),
                          timeout=RECOVERY_DEADLINE_S, interval=0.25)  # fmt: skip
        first = min(r["ts"] for r in alerts_of(journal, lost, killed, N_SHARDS))
        recovery_s = first - killed
        print(f"recovery: alerts of the lost shard's accounts {recovery_s:.1f} s after w1 died")
        assert wait_until(lambda: all_back_after(out, killed, N_ACCOUNTS) is not None,
                          timeout=RECOVERY_DEADLINE_S, interval=0.5), lines(out)[-3:]  # fmt: skip
        after = all_back_after(out, killed, N_ACCOUNTS)
        print(f"every account back on a shard {after['t'] - killed:.1f} s after w1 died")
        status = cli_until(c, "status")
        assert status.returncode == 0, status.stdout + status.stderr
        shards = [x.split() for x in status.stdout.splitlines() if "AccountShard" in x]
        assert all(r[1] == ips["w2"] and r[2] == "alive" for r in shards), status.stdout

        (edge.workdir / "drill.jsonl.stop").write_text("")
        assert wait_until(lambda: phase(out, "done") is not None, timeout=180, interval=0.5)
        final = phase(out, "done")
        assert final["gateway"].get("orders", 0) > 0, final  # approved actions became orders
        assert final["gateway"].get("duplicates", 0) == 0, final
    finally:
        stopped = cli_until(c, "stop")
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
        failed = [(r["ref"], r.get("error")) for r in store.query(kind="notification.attempt")
                  if not r.get("ok")]  # fmt: skip
    finally:
        store.close()
    url = f"http://{edge.ip}:{SINK_PORT}/_sink/messages"
    with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 (the drill's own sink)
        messages = json.loads(resp.read())
    bodies = Counter((m.get("recipient"), m.get("body")) for m in messages)
    twice = [b for b, n in bodies.items() if n > 1]
    assert messages and not twice, (twice[:3], failed[:5])  # no page sent twice (and why)
    print(f"{len(messages)} pages at the sink, {delivered} deliveries journaled")
