"""The actor shell without Ray: a loop outlives a failing step (counted, last error kept) and ends
on `stop()`; a rejected input is quarantined with its reason; `stats()` merges `figures()`."""

from __future__ import annotations

import threading

from actors.context import Context
from actors.shell import ActorShell
from tests.zmq_util import wait_until


class Probe(ActorShell):
    def __init__(self) -> None:
        super().__init__("Probe", Context.of(), quarantine_size=3)
        self.calls = 0
        self.done = threading.Event()

    def step(self) -> None:
        self.calls += 1
        if self.calls % 2:
            raise ValueError(f"bad round {self.calls}")

    def figures(self) -> dict:
        return {"calls": self.calls}


def test_a_loop_counts_errors_and_goes_on_until_stop():
    probe = Probe()
    probe.every(0.001, probe.step, "tick")
    try:
        assert wait_until(lambda: probe.calls >= 6, timeout=10)
    finally:
        probe.stop()
    assert probe.stopping()
    calls = probe.calls
    assert probe.counts["tick_errors"] == (calls + 1) // 2
    assert probe.last_error.startswith("tick: ValueError: bad round")
    assert probe.calls == calls, "no round after stop()"


def test_quarantine_is_bounded_and_stats_merge_figures():
    probe = Probe()
    for i in range(5):
        probe.reject(f"reason {i}", b"x" * 500)
    assert probe.reasons() == ["reason 2", "reason 3", "reason 4"]
    assert len(probe.quarantine[0]["item"]) == 200
    stats = probe.stats()
    assert stats["quarantined"] == 3 and stats["calls"] == 0 and stats["last_error"] == ""
