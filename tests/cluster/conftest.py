"""The namespace cluster is built once per session for the tests that ask for it."""

from __future__ import annotations

import pytest

from tests.cluster.netns import NetnsCluster, available


@pytest.fixture(scope="session")
def netns_cluster():
    why = available()
    if why:
        pytest.skip(f"no namespace cluster here: {why}")
    cluster = NetnsCluster(["head", "w1", "w2", "edge"], ray_hosts=["head", "w1", "w2"])
    try:
        cluster.start_ray(cpus=1, resources={"w1": '{"fengkong_shard": 1}',
                                             "w2": '{"fengkong_shard": 1, "fengkong_journal": 1}'})  # fmt: skip
        yield cluster
    finally:
        cluster.teardown()
