"""The harness itself: three Ray nodes in three namespaces, reached from an edge host by Ray Client,
placement by custom resources, and a node's death seen by the cluster."""

from __future__ import annotations

import json
import textwrap
import time

import pytest

pytestmark = pytest.mark.cluster

PROBE = textwrap.dedent(
    """
    import json, sys, ray
    ray.init(address=sys.argv[1], logging_level="ERROR")

    @ray.remote(num_cpus=0, resources={"fengkong_shard": 0.01})
    def shard_node():
        return ray.util.get_node_ip_address()

    @ray.remote(num_cpus=0, resources={"fengkong_journal": 0.01})
    def journal_node():
        return ray.util.get_node_ip_address()

    alive = sorted(n["NodeManagerAddress"] for n in ray.nodes() if n["Alive"])
    print(json.dumps({"alive": alive,
                      "shards": sorted(set(ray.get([shard_node.remote() for _ in range(8)]))),
                      "journal": ray.get(journal_node.remote())}))
    """
)


def _probe(cluster) -> dict:
    """One probe from the edge; asked again while Ray Client's per-client server did not start
    in time (a loaded machine), until a deadline."""
    edge = cluster.hosts["edge"]
    deadline = time.monotonic() + 300
    while True:
        done = edge.run([cluster.python, "-c", PROBE, cluster.client_address], cluster.env, 180)
        lost = "Initialization failure from server" in done.stderr
        if done.returncode == 0 or not lost or time.monotonic() > deadline:
            break
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_three_nodes_from_the_edge_and_a_node_loss(netns_cluster) -> None:
    c = netns_cluster
    seen = _probe(c)
    ips = {name: c.hosts[name].ip for name in ("head", "w1", "w2")}
    assert seen["alive"] == sorted(ips.values())
    assert set(seen["shards"]) <= {ips["w1"], ips["w2"]}  # never the head
    assert seen["journal"] == ips["w2"]
    c.hosts["w1"].kill()
    # The GCS notices the dead node by its health checks: probe until it is gone.
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        seen = _probe(c)
        if ips["w1"] not in seen["alive"]:
            break
    assert ips["w1"] not in seen["alive"] and seen["shards"] == [ips["w2"]]
    c.revive("w1")  # powered on again: the session's next test gets the whole cluster
    assert sorted(_probe(c)["alive"]) == sorted(ips.values())
