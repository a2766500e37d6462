"""A system starts without Ray's "constructor arguments in the object store" warning, and a
restarted actor still reaches its peers (issue 13; ray-project/ray#53727).

Ray 2.60 logs that warning (core_worker.cc, in the creating process's log) for an actor created
with `max_restarts > 0` whose constructor arguments hold an actor handle: its restart may fail.
The composition root now passes peers by name (actors.peers.Peer). Ray logs the warning once
per process, so both checks run in fresh drivers (tests/integration/peer_probe.py); the control
case — an actor given a handle — shows the warning lands where the probe looks for it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import ray

from actors.peers import Peer
from tests.zmq_util import wait_until


def _probe(mode: str, tmp) -> int:
    """Ray's warning count in a fresh driver that ran `mode` (tests/integration/peer_probe.py):
    it is logged once per process, so this test's own process may have used it up already."""
    address = ray.get_runtime_context().gcs_address
    out = subprocess.run(
        [sys.executable, "-m", "tests.integration.peer_probe", address, mode, str(tmp)],
        capture_output=True, text=True, timeout=240, cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    found = [line for line in out.stdout.splitlines() if line.startswith("warnings=")]
    assert found, f"probe {mode} failed: {out.stderr[-2000:]}"
    return int(found[-1].split("=")[1])


@ray.remote(num_cpus=0, max_restarts=1)
class _Holder:
    def __init__(self, peer):
        self.peer = peer

    def ping_peer(self) -> int:
        return ray.get(self.peer.pid.remote())

    def pid(self) -> int:
        return os.getpid()


def test_a_system_starts_with_no_restart_warning_and_a_restarted_actor_reaches_its_peers(
    ray_local, tmp_path_factory
):
    assert _probe("system", tmp_path_factory.mktemp("peers")) == 0, (
        "an actor of the system got a handle at construction"
    )
    assert _probe("control", tmp_path_factory.mktemp("control")) == 1  # the probe does see it
    # The peer is a named actor of its own, not a whole system (the probe above started one):
    # a Peer is only its name, so an actor killed -9 is rebuilt from the same two strings and
    # reaches its peer again (tests/integration/test_closed_loop_restart.py shows the Executor
    # doing so inside the system: rebuilt from the journal, the order finished).
    name = f"peer-target-{os.getpid()}"
    target = _Holder.options(name=name).remote(None)
    try:
        holder = _Holder.remote(Peer.of(name))
        target_pid = ray.get(target.pid.remote())
        assert ray.get(holder.ping_peer.remote()) == target_pid
        before = ray.get(holder.pid.remote())
        os.kill(before, signal.SIGKILL)

        def restarted() -> bool:
            try:
                return ray.get(holder.pid.remote(), timeout=2) != before
            except Exception:
                return False

        assert wait_until(restarted, 60)
        assert ray.get(holder.ping_peer.remote()) == target_pid
        ray.kill(holder, no_restart=True)
    finally:
        ray.kill(target, no_restart=True)
