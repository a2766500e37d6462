"""Actors answer over Ray with their public API only (issue 13 item 5).

Ray exposes every method of an actor class: before the guard, `executor._perform.remote(...)`
performed any effect (an order to the gateway) that no one approved, and `__ray_call__` ran any
closure on the instance. On a real local Ray, a private method and `__ray_call__` are refused
with PRIVATE_METHOD and counted; the actor's own calls to its private methods still work.
"""

from __future__ import annotations

import pytest
import ray

from actors.execution.settings import ExecutorSettings
from actors.executor import Executor
from actors.shell import ActorShell, PrivateMethodRefused, guard_private
from rules.execution.messages import SendOrders


class Plain(ActorShell):
    def __init__(self) -> None:
        super().__init__("Plain")
        self.acted = 0

    def _act(self) -> int:
        self.acted += 1
        return self.acted

    def act(self) -> int:
        """The public door: it may call its private method."""
        return self._act()

    @staticmethod
    def _helper(x: int) -> int:  # static methods are left alone (no self to guard)
        return x + 1


def test_the_guard_leaves_own_calls_and_static_methods_alone():
    p = Plain()
    assert p.act() == 1 and p._act() == 2  # called from our code, not from Ray
    assert Plain._helper(1) == 2


def test_a_private_method_over_ray_is_refused_and_counted(ray_local):
    actor = ray.remote(Plain).remote()
    assert ray.get(actor.act.remote()) == 1
    with pytest.raises(ray.exceptions.RayTaskError) as err:
        ray.get(actor._act.remote())
    assert "PRIVATE_METHOD: Plain._act is not part of its API" in str(err.value)
    assert isinstance(err.value.as_instanceof_cause(), PrivateMethodRefused)
    with pytest.raises(ray.exceptions.RayTaskError, match="PRIVATE_METHOD: Plain.__ray_call__"):
        ray.get(actor.__ray_call__.remote(lambda self: self._act()))
    stats = ray.get(actor.stats.remote())
    assert stats["private_calls_refused"] == 2
    assert stats["quarantined"] == 2
    assert ray.get(actor.act.remote()) == 2, "the refused calls did not act"
    assert ray.get(actor.node_ip.remote())


def test_the_executor_performs_no_effect_for_a_caller_over_ray(ray_local):
    settings = ExecutorSettings(
        "tcp://127.0.0.1:17961", "tcp://127.0.0.1:17962", 1, name_prefix="guard."
    )
    executor = Executor.options(name="guard.Executor").remote(settings)
    try:
        order = {"order_ref": "forged-1", "account_id": "ACC1", "instrument": "rb2601",
                 "direction": "sell", "offset": "close", "volume": 1, "price": 3000.0}  # fmt: skip
        for method, args in (
            ("_perform", ([SendOrders((order,))],)),
            ("_run", (SendOrders((order,)),)),
            ("_apply", (SendOrders((order,)),)),
            ("_watch_step", ()),
        ):
            with pytest.raises(ray.exceptions.RayTaskError, match="PRIVATE_METHOD"):
                ray.get(getattr(executor, method).remote(*args))
        figures = ray.get(executor.stats.remote())
        assert figures["private_calls_refused"] == 4
        assert figures["open_orders"] == 0
    finally:
        ray.kill(executor)


def test_a_class_decorator_guards_an_actor_that_is_not_a_shell(ray_local):
    @guard_private
    class Edge:
        def _secret(self) -> str:
            return "acted"

        def ping(self) -> str:
            return self._secret()

    edge = ray.remote(Edge).remote()
    assert ray.get(edge.ping.remote()) == "acted"
    with pytest.raises(ray.exceptions.RayTaskError, match="PRIVATE_METHOD: Edge._secret"):
        ray.get(edge._secret.remote())


class Waiting(ActorShell):
    """An asynchronous actor: its private coroutine is guarded like a plain private method."""

    def __init__(self) -> None:
        super().__init__("Waiting")
        self.acted = 0

    async def _act(self) -> int:
        self.acted += 1
        return self.acted

    async def act(self) -> int:
        return await self._act()


def test_a_private_coroutine_over_ray_is_refused_and_counted(ray_local):
    actor = ray.remote(Waiting).remote()
    assert ray.get(actor.act.remote()) == 1, "the actor's own await still works"
    with pytest.raises(ray.exceptions.RayTaskError) as err:
        ray.get(actor._act.remote())
    assert "PRIVATE_METHOD: Waiting._act is not part of its API" in str(err.value)
    stats = ray.get(actor.stats.remote())
    assert stats["private_calls_refused"] == 1
    assert ray.get(actor.act.remote()) == 2, "the refused call did not act"


def test_the_audit_logs_private_coroutines_are_refused_over_ray(ray_local, tmp_path):
    from actors.audit_log import AuditLog, AuditLogSettings

    log = AuditLog.remote(AuditLogSettings(str(tmp_path / "journal.sqlite"), batch_ms=50))
    try:
        assert ray.get(log.durable.remote([{"kind": "alert", "key": "A"}])) == 1
        with pytest.raises(ray.exceptions.RayTaskError, match="AuditLog._committed_through"):
            ray.get(log._committed_through.remote(0))
        assert ray.get(log.stats.remote())["private_calls_refused"] == 1
        assert ray.get(log.durable.remote([{"kind": "alert", "key": "B"}])) == 2
    finally:
        ray.kill(log)
