"""A system starts without Ray's "constructor arguments in the object store" warning, and a
restarted actor still reaches its peers (issue 13; ray-project/ray#53727).

Ray 2.60 logs that warning (core_worker.cc, in the creating process's log) for an actor created
with `max_restarts > 0` whose constructor arguments hold an actor handle: its restart may fail.
The composition root now passes peers by name (actors.peers.Peer). The control case — a small
actor given a handle — shows the warning lands where this test looks for it.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import ray

from actors.peers import Peer
from tests.integration.harness import start_harness
from tests.zmq_util import wait_until

WARNING = "has constructor arguments in the object store and max_restarts > 0"


def _driver_log() -> Path:
    logs = Path(ray._private.worker.global_worker.node.get_logs_dir_path())
    found = sorted(logs.glob(f"python-core-driver-*_{os.getpid()}.log"))
    assert found, f"no core driver log for pid {os.getpid()} in {logs}"
    return found[-1]


def _warned(log: Path, start: int) -> list[str]:
    return [
        line for line in log.read_text(errors="replace")[start:].splitlines() if WARNING in line
    ]


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
    log = _driver_log()
    start = len(log.read_text(errors="replace"))
    h = start_harness(tmp_path_factory.mktemp("peers"), {"rb2601": 3000.0}, ["rb"])
    try:
        assert _warned(log, start) == [], "an actor of the system got a handle at construction"

        # control: a handle in the constructor arguments does warn, in this very log
        control = _Holder.remote(h.system.audit)
        ray.get(control.ping_peer.remote())
        assert wait_until(lambda: len(_warned(log, start)) == 1, 10)
        ray.kill(control, no_restart=True)

        # a Peer is only its name: an actor killed -9 is rebuilt from the same two strings
        # and reaches its peer again (tests/integration/test_closed_loop_restart.py shows the
        # Executor doing so inside the system: rebuilt from the journal, the order finished)
        holder = _Holder.remote(Peer.of(f"{h.system.prefix}AuditLog"))
        audit_pid = ray.get(h.system.audit.pid.remote())
        assert ray.get(holder.ping_peer.remote()) == audit_pid
        before = ray.get(holder.pid.remote())
        os.kill(before, signal.SIGKILL)

        def restarted() -> bool:
            try:
                return ray.get(holder.pid.remote(), timeout=2) != before
            except Exception:
                return False

        assert wait_until(restarted, 60)
        assert ray.get(holder.ping_peer.remote()) == audit_pid
        assert len(_warned(log, start)) == 1, "the Peer-holding actor never warned"
        ray.kill(holder, no_restart=True)
    finally:
        h.stop()
