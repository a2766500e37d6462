"""`fengkong run --detach` from the edge host on the 3-node namespace cluster: the driver exits,
shards are placed on the `fengkong_shard` nodes (never the head), and after a worker node's death
every shard is alive again on the surviving node; `fengkong stop` takes the system down."""

from __future__ import annotations

import time

import pytest

from tests.cluster.netns import NetnsCluster, available

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def cluster():
    why = available()
    if why:
        pytest.skip(f"no namespace cluster here: {why}")
    c = NetnsCluster(["head", "w1", "w2", "edge"], ray_hosts=["head", "w1", "w2"])
    try:
        c.start_ray(cpus=1, resources={"w1": '{"fengkong_shard": 1}',
                                       "w2": '{"fengkong_shard": 1, "fengkong_journal": 1}'})  # fmt: skip
        yield c
    finally:
        c.teardown()


def _cli(c: NetnsCluster, *argv: str, timeout: float = 300):
    edge = c.hosts["edge"]
    cmd = [c.python, "-m", "app.cli", argv[0], "--config", str(edge.workdir / "fk.toml"),
           "--address", c.client_address, *argv[1:]]  # fmt: skip
    return edge.run(cmd, c.env, timeout)


def _shards(c: NetnsCluster) -> dict[str, tuple[str, str]]:
    done = _cli(c, "status", timeout=120)
    assert done.returncode == 0, (done.stdout + done.stderr)[-2000:]
    rows = [line.split() for line in done.stdout.splitlines() if "AccountShard" in line]
    return {r[0]: (r[1], r[2]) for r in rows if len(r) >= 3}


def test_run_detached_places_shards_off_the_head_and_survives_a_worker(cluster) -> None:
    c = cluster
    ep = f"tcp://{c.hosts['edge'].ip}"
    (c.hosts["edge"].workdir / "fk.toml").write_text(
        f"""
[audit]
path = "{c.root}/journal/journal.sqlite"
[accounts]
shards = 2
endpoint = "{ep}:18711"
snapshot_endpoint = "{ep}:18712"
inbound_endpoint = "{ep}:18713"
[orders]
endpoint = "{ep}:18721"
reports_endpoint = "{ep}:18722"
[[market.feeds]]
name = "sim"
endpoint = "{ep}:18701"
"""
    )
    done = _cli(c, "run", "--detach")
    try:
        assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
        ips = {name: c.hosts[name].ip for name in ("head", "w1", "w2")}
        shards = _shards(c)
        assert len(shards) == 2 and all(s == "alive" for _, s in shards.values()), shards
        assert {ip for ip, _ in shards.values()} <= {ips["w1"], ips["w2"]}  # never the head
        c.hosts["w1"].kill()
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            shards = _shards(c)
            if len(shards) == 2 and all(v == (ips["w2"], "alive") for v in shards.values()):
                break
            time.sleep(2)  # the status call itself takes seconds; this only paces the polling
        assert all(v == (ips["w2"], "alive") for v in shards.values()), shards
    finally:
        stopped = _cli(c, "stop", timeout=180)
    assert stopped.returncode == 0, (stopped.stdout + stopped.stderr)[-2000:]
