"""The supervisor actor: the long-lived owner of a deployed system (`fengkong run`).

The driver that ran `fengkong run` may exit; this detached, named actor in the "fengkong"
namespace holds the handles, answers `fengkong status` and `fengkong stop`, and reconciles:
an actor dead past its restarts (max_restarts=-1 makes that rare: a kill without restart or a
constructor that cannot succeed) makes it rebuild the system, journaled, because every peer holds
handles passed at construction and a lone re-created actor would be wired to nobody.
Every call it makes is guarded: one failed call is a one-line reason, never a teardown.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import ray

from actors.common import actor_name
from app.supervisor import System, start_system, stop_system
from infra.cluster import Placement
from infra.config import Config

SUPERVISOR_ROLE = "Supervisor"
RECONCILE_S = 5.0
PING_TIMEOUT_S = 3.0


def supervisor_name(prefix: str = "fengkong.") -> str:
    return actor_name(prefix, SUPERVISOR_ROLE)


def _reason(exc: BaseException) -> str:
    """One line for the operator, not a Ray traceback."""
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first[:160]}"


def _has(handle: Any, method: str) -> bool:
    try:
        getattr(handle, method)
    except AttributeError:
        return False
    return True


def _node_ip(_self: Any) -> str:
    return ray.util.get_node_ip_address()


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1, max_concurrency=4)
class SystemSupervisor:
    def __init__(self, cfg: Config, prefix: str, run_id: str) -> None:
        self.cfg, self.prefix, self.run_id = cfg, prefix, run_id
        self.events: list[str] = []
        self.rebuilds = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.system: System | None = None
        self._adopt_or_start()
        self._known: list[str] = self._names()  # every actor seen, so a vanished one is noticed
        self._thread = threading.Thread(target=self._loop, daemon=True, name="reconcile")
        self._thread.start()

    # ---- life cycle ----------------------------------------------------------------------------

    def _adopt_or_start(self) -> None:
        """A restarted supervisor finds its detached actors by name before starting any."""
        try:
            audit = ray.get_actor(actor_name(self.prefix, "AuditLog"))
            self._event(f"supervisor restarted; the running system (journal {audit}) is kept")
            self.system = None  # handles of a previous incarnation: status goes by name
        except ValueError:
            self.system = start_system(self.cfg, self.prefix, placement=self._placement())
            self._journal("system.started", {"run_id": self.run_id, "path": self.cfg.audit.path})

    def _placement(self) -> Placement:
        return Placement(self.cfg.cluster, detached=True)

    def _event(self, text: str) -> None:
        self.events = [*self.events[-49:], f"{time.strftime('%H:%M:%S')} {text}"]

    def _journal(self, kind: str, payload: dict[str, Any]) -> None:
        try:
            audit = ray.get_actor(actor_name(self.prefix, "AuditLog"))
            rec = {"kind": kind, "actor": SUPERVISOR_ROLE, "key": self.run_id, **payload}
            ray.get(audit.append.remote([rec]), timeout=10)
        except Exception as exc:  # the journal's node may be gone; say so, keep supervising
            self._event(f"could not journal {kind}: {_reason(exc)}")

    # ---- reconcile -----------------------------------------------------------------------------

    def _names(self) -> list[str]:
        try:
            named = ray.util.list_named_actors()
        except Exception as exc:
            self._event(f"cannot list actors: {_reason(exc)}")
            return []
        own = supervisor_name(self.prefix)
        names = [n if isinstance(n, str) else n["name"] for n in named]
        return sorted(n for n in names if n.startswith(self.prefix) and n != own)

    def _probe(self, name: str) -> dict[str, Any]:
        row: dict[str, Any] = {"name": name, "node_ip": "", "state": "unknown", "rtt_ms": None}
        try:
            handle = ray.get_actor(name)
        except ValueError:
            return {**row, "state": "dead"}
        t0 = time.perf_counter()
        try:
            # the shell's public `node_ip` (its guard refuses `__ray_call__`); other actors
            # (the edges that are not shells) still answer the closure
            ask = handle.node_ip.remote() if _has(handle, "node_ip") else (
                handle.__ray_call__.remote(_node_ip)
            )  # fmt: skip
            row["node_ip"] = ray.get(ask, timeout=PING_TIMEOUT_S)
            row["state"] = "alive"
            row["rtt_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        except ray.exceptions.GetTimeoutError:
            row["state"] = "restarting"  # no answer yet: pending placement or restarting
        except ray.exceptions.ActorDiedError as exc:
            row["state"] = "dead"
            row["reason"] = _reason(exc)
        except Exception as exc:  # unavailable (its node is lost, a restart is under way)
            row["state"] = "restarting"
            row["reason"] = _reason(exc)
        return row

    def reconcile(self) -> list[str]:
        """Rebuild when an actor the system started is dead past its restarts; returns the dead."""
        with self._lock:
            if self._stop.is_set() or self.system is None:
                return []
            dead = [r["name"] for r in map(self._probe, self._known) if r["state"] == "dead"]
            if not dead:
                return []
            self._event(f"dead past restarts: {', '.join(dead)}; rebuilding the system")
            try:
                stop_system(self.system)
                self.system = start_system(self.cfg, self.prefix, placement=self._placement())
                self.rebuilds += 1
                self._journal("system.rebuilt", {"run_id": self.run_id, "dead": dead})
            except Exception as exc:
                self._event(f"rebuild failed, retrying next round: {_reason(exc)}")
            return dead

    def _loop(self) -> None:
        while not self._stop.wait(RECONCILE_S):
            try:
                self._known = sorted(set(self._known) | set(self._names()))
                self.reconcile()
            except Exception as exc:  # never let the loop die
                self._event(f"reconcile: {_reason(exc)}")

    # ---- operator calls ------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Every actor of the system: its node's IP, alive/restarting/dead, call round trip."""
        rows = [self._probe(n) for n in self._names()]
        return {
            "run_id": self.run_id,
            "journal": self.cfg.audit.path,
            "rebuilds": self.rebuilds,
            "console_url": self.cfg.console.url if self.cfg.console.enabled else "",
            "node_ip": ray.util.get_node_ip_address(),
            "actors": rows,
            "events": list(self.events[-10:]),
        }

    def stop(self) -> str:
        """Stop reconciling, flush the journal, kill every actor (no restart)."""
        self._stop.set()
        with self._lock:
            self._journal("system.stopped", {"run_id": self.run_id})
            if self.system is not None:
                stop_system(self.system)  # the console with it
            elif self.cfg.console.enabled:  # a restarted supervisor: the console is found by name
                from app.console.serve import stop_console

                stop_console()
            for name in self._names():  # actors of an earlier incarnation, found by name
                try:
                    ray.kill(ray.get_actor(name), no_restart=True)
                except Exception:
                    pass
            self.system = None
        return f"stopped run {self.run_id}"
