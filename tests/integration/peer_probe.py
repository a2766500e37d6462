"""A fresh driver for tests/integration/test_peer_wiring.py: Ray logs its #53727 warning once
per process, so whether a system's start warns can only be seen in a process that never
warned before. `python -m tests.integration.peer_probe ADDRESS system|control TMP` joins the
running Ray, starts a harness system (or, as the control, one actor given a handle) and prints
how many such warnings this process's core log holds."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import ray

WARNING = "has constructor arguments in the object store and max_restarts > 0"


@ray.remote(num_cpus=0, max_restarts=1)
class Holder:
    def __init__(self, peer=None) -> None:
        self.peer = peer

    def ok(self) -> int:
        return 1


def warnings() -> int:
    logs = Path(ray._private.worker.global_worker.node.get_logs_dir_path())
    found = sorted(logs.glob(f"python-core-driver-*_{os.getpid()}.log"))
    return found[-1].read_text(errors="replace").count(WARNING) if found else -1


def main(address: str, mode: str, tmp: str) -> int:
    ray.init(address=address, namespace="fengkong-test", log_to_driver=False)
    if mode == "system":
        from tests.integration.harness import start_harness

        h = start_harness(Path(tmp), {"rb2601": 3000.0}, ["rb"])
        ray.get(h.system.audit.flush.remote())
        h.stop()
    else:
        peer = Holder.remote()
        ray.get(peer.ok.remote())
        control = Holder.remote(peer)  # an actor handle among the constructor arguments
        ray.get(control.ok.remote())
    print(f"warnings={warnings()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
