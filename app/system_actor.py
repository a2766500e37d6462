"""The supervisor actor: the long-lived owner of a deployed system (`fengkong run`).

The driver that ran `fengkong run` may exit; this detached, named actor in the "fengkong"
namespace holds the handles, answers `fengkong status` and `fengkong stop`, and reconciles:
an actor dead past its restarts (max_restarts=-1 makes that rare: a kill without restart or a
constructor that cannot succeed) makes it rebuild the system, journaled, because every peer holds
handles passed at construction and a lone re-created actor would be wired to nobody.
It starts the edges the config names first (app.edges: bus, market, order gateway), wires the
risk loop to the endpoints they published, and rebuilds what depends on an edge that came back
on another node with another address. Health problems (app.system_health) are journaled.
Every call it makes is guarded: one failed call is a one-line reason, never a teardown.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import ray

from actors.common import actor_name
from app.edges import EDGE_ROLES, ask_endpoints, edge_roles, start_edges, stop_edges, with_endpoints
from app.supervisor import System, adopt_system, start_system, stop_system
from app.system_health import Health
from infra.cluster import Placement
from infra.config import Config

SUPERVISOR_ROLE = "Supervisor"
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
    def __init__(
        self,
        cfg: Config,
        prefix: str,
        run_id: str,
        secrets: dict[str, dict[str, str]] | None = None,
    ) -> None:
        """`secrets`: each role's environment variables (infra.cluster.role_secrets), handed to
        that role's actors only; never in this actor's environment or any other's."""
        self.cfg, self.prefix, self.run_id = cfg, prefix, run_id
        self.secrets = dict(secrets or {})
        self.events: list[str] = []
        self.rebuilds = 0
        self.edges: dict[str, Any] = {}
        self.endpoints: dict[str, str] = {}
        self.started = time.time()
        self.health = Health(self._journal)
        self.failed = ""  # why the first start failed ("" when it did not)
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
            self.system = adopt_system(self.cfg, self.prefix, self._names())
            for role in edge_roles(self.cfg):
                try:
                    self.edges[role] = ray.get_actor(actor_name(self.prefix, role))
                except ValueError:
                    pass
            self.endpoints = ask_endpoints(self.edges, timeout=30) or {}
        except ValueError:
            try:
                self._start()
            except Exception as exc:  # one line for `fengkong run`, and nothing left behind
                self.failed = _reason(exc)
                self._event(f"the system did not start: {self.failed}")
                self._kill_by_name()
                self.system, self.edges = None, {}
                return
            self._journal("system.started", {"run_id": self.run_id, "path": self.cfg.audit.path,
                                             "endpoints": self.endpoints})  # fmt: skip

    def _kill_by_name(self, spare: tuple[str, ...] = ()) -> None:
        for name in self._names():
            if name.removeprefix(self.prefix) not in spare:
                try:
                    ray.kill(ray.get_actor(name), no_restart=True)
                except Exception:  # already gone
                    pass

    def _start(self, keep: dict[str, Any] | None = None) -> None:
        """Edges first (keeping those in `keep`), then the risk loop on their endpoints."""
        self.edges, self.endpoints = start_edges(self.cfg, self.prefix, self._placement(), keep)
        wired = with_endpoints(self.cfg, self.endpoints)
        self.system = start_system(wired, self.prefix, placement=self._placement())
        self.started = time.time()

    def _placement(self) -> Placement:
        return Placement(self.cfg.cluster, detached=True, secrets=self.secrets)

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

    def _moved(self) -> list[str]:
        """Edges answering with other endpoints than the system was wired with (restarted on
        another node), in start order; an edge that does not answer yet is not judged."""
        if not self.endpoints:  # adopted without an answer yet: the first answer is the wiring
            self.endpoints = ask_endpoints(self.edges) or {}
            return []
        moved = []
        for role, handle in self.edges.items():
            now = ask_endpoints({role: handle})
            if now is not None and any(self.endpoints.get(k) != v for k, v in now.items()):
                moved.append(role)
        return moved

    def reconcile(self) -> list[str]:
        """Rebuild when an actor the system started is dead past its restarts, or an edge came
        back with another address; returns the dead (and moved) names."""
        with self._lock:
            if self._stop.is_set():
                return []
            if self.failed:
                return []
            if self.system is None:  # adopted without every singleton: make it whole again
                self._event("adopted an incomplete system; rebuilding it")
                self._kill_by_name(spare=tuple(self.edges))
                try:
                    self._start(keep=self.edges)
                    self.rebuilds += 1
                    self._journal("system.rebuilt", {"run_id": self.run_id, "dead": [],
                                                     "moved": [], "endpoints": self.endpoints})  # fmt: skip
                except Exception as exc:
                    self._event(f"rebuild failed, retrying next round: {_reason(exc)}")
                return []
            dead = [r["name"] for r in map(self._probe, self._known) if r["state"] == "dead"]
            moved = self._moved()
            if not dead and not moved:
                return []
            bad = {n.removeprefix(self.prefix) for n in dead} | set(moved)
            first = min((EDGE_ROLES.index(r) for r in bad if r in EDGE_ROLES), default=None)
            # Edges before the first bad one keep running; a moved edge (alive elsewhere) too;
            # the edges after it were wired to its old address and are made again.
            keep = {
                r: h
                for r, h in self.edges.items()
                if first is None
                or EDGE_ROLES.index(r) < first
                or (EDGE_ROLES.index(r) == first and r in moved)
            }
            why = f"dead past restarts: {', '.join(dead)}" if dead else ""
            why += f"{'; ' if why else ''}moved: {', '.join(moved)}" if moved else ""
            self._event(f"{why}; rebuilding the system")
            try:
                stop_system(self.system)
                stop_edges({r: h for r, h in self.edges.items() if r not in keep})
                self._start(keep)
                self.rebuilds += 1
                self._journal("system.rebuilt", {"run_id": self.run_id, "dead": dead,
                                                 "moved": moved, "endpoints": self.endpoints})  # fmt: skip
            except Exception as exc:
                self._event(f"rebuild failed, retrying next round: {_reason(exc)}")
            return dead + moved

    def refill_bus(self) -> int:
        """A bus restarted in place (its node came back: same address, so not `moved`) holds
        an empty log, and a shard restarted after it would rebuild from nothing: the market
        edge sends its accounts again. Returns how many (0: nothing to do)."""
        bus, market = self.edges.get("AccountBus"), self.edges.get("SimMarket")
        if bus is None or market is None or not _has(market, "republish"):
            return 0
        with self._lock:
            if self._stop.is_set():
                return 0
            try:
                held = ray.get(bus.stats.remote(), timeout=PING_TIMEOUT_S).get("held", 0)
                published = ray.get(market.stats.remote(), timeout=PING_TIMEOUT_S).get(
                    "accounts_published", 0
                )
                if held or not published:
                    return 0
                n = int(ray.get(market.republish.remote(), timeout=60))
            except Exception as exc:  # restarting: the next round asks again
                self._event(f"bus refill: {_reason(exc)}")
                return 0
            self._event(f"the account bus came back empty; the market sent {n} accounts again")
            self._journal("system.bus_refilled", {"run_id": self.run_id, "accounts": n})
            return n

    def check_health(self) -> list[str]:
        """One round of app.system_health checks; returns the problems standing."""
        with self._lock:  # not while a rebuild or the stop is under way
            if not self._stop.is_set():
                wired = with_endpoints(self.cfg, self.endpoints)
                self.health.check(wired, self.system, self.started)
            return self.health.lines()

    def _loop(self) -> None:
        while not self._stop.wait(self.cfg.cluster.reconcile_s):
            try:
                self._known = sorted(set(self._known) | set(self._names()))
                self.reconcile()
                self.refill_bus()
                self.check_health()
            except Exception as exc:  # never let the loop die
                self._event(f"reconcile: {_reason(exc)}")

    # ---- operator calls ------------------------------------------------------------------------

    def endpoints_of(self) -> dict[str, str]:
        """Every endpoint the edges published, keyed like the config (`fengkong endpoints`)."""
        return dict(self.endpoints)

    def status(self) -> dict[str, Any]:
        """Every actor of the system: its node's IP, alive/restarting/dead, call round trip."""
        rows = [self._probe(n) for n in self._names()]
        return {
            "run_id": self.run_id,
            "journal": self.cfg.audit.path,
            "rebuilds": self.rebuilds,
            "console_url": self.cfg.console.url if self.cfg.console.enabled else "",
            "failed": self.failed,
            "node_ip": ray.util.get_node_ip_address(),
            "endpoints": dict(self.endpoints),
            "health": self.health.lines(),
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
            stop_edges(self.edges)
            self._kill_by_name()  # actors of an earlier incarnation, found by name
            self.system = None
        return f"stopped run {self.run_id}"
