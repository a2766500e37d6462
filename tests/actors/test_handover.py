"""actors.handover.Handovers: a sender that fires and forgets can tell when its peer took all."""

from __future__ import annotations

import threading

from actors.handover import Handovers


def test_wait_is_false_while_a_call_is_unanswered_or_being_made_and_true_after(ray_local):
    ray = ray_local

    @ray.remote
    class Gate:
        def __init__(self) -> None:
            self.open = threading.Event()

        def take(self) -> bool:
            return self.open.wait(60)

        def release(self) -> None:
            self.open.set()

    gate = Gate.options(max_concurrency=2).remote()
    ray.get(gate.__ray_ready__.remote())
    h = Handovers()
    assert h.wait(0.0)  # nothing handed over
    h.begin()
    assert not h.wait(0.1)  # taken from the sender, call not made yet
    h.done(gate.take.remote())
    assert not h.wait(0.2)  # made, not answered
    held = [True]
    gate.release.remote()
    assert not h.wait(0.5, held=lambda: held[0])  # answered, but the sender still holds some
    held[0] = False
    assert h.wait(30)
    h.begin()
    h.done()  # nothing to call after all
    assert h.wait(0.0)
    ray.kill(gate)
