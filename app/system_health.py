"""What the supervisor checks besides life and death, each round: a problem is a visible
event (journaled once when it starts, once when it clears, and listed by `fengkong status`),
never silence (issue 14 item 2):

- `endpoint_unreachable`: a TCP connect from the supervisor's node to an endpoint the system
  uses (an edge's, or an outside process's) fails;
- `shard_empty`: a shard holds no accounts `EMPTY_GRACE_S` after the system started;
- `feed_silent`: a feed's tick count has not moved for `SILENT_S` (the feed itself alerts on
  silence inside a session; this shows it in `fengkong status` whatever the session);
- `journal_unreachable`: the AuditLog does not answer, or its last commit failed (its node is
  lost, the disk is full or locked): nothing that must be journaled first can act;
- `journal_held`: the Executor holds effects (orders among them) behind a durable record that
  did not commit; they go out, in order, once the journal commits (actors/executor.py).

One stats call per shard and feed per round (every few seconds), never per tick or account.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

import ray

EMPTY_GRACE_S = 30.0
SILENT_S = 30.0
CONNECT_TIMEOUT_S = 1.0
STATS_TIMEOUT_S = 3.0


def reachable(endpoint: str, timeout: float = CONNECT_TIMEOUT_S) -> bool:
    """A TCP connect to `tcp://host:port` succeeds (something listens there)."""
    try:
        host, port = endpoint.removeprefix("tcp://").rsplit(":", 1)
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def system_endpoints(cfg: Any) -> dict[str, str]:
    """Every endpoint the risk loop connects to, keyed as the config names it."""
    out = {
        "accounts.endpoint": cfg.accounts.endpoint,
        "accounts.snapshot_endpoint": cfg.accounts.snapshot_endpoint,
        "orders.endpoint": cfg.orders.endpoint,
        "orders.reports_endpoint": cfg.orders.reports_endpoint,
    }
    out.update({f"market.feeds.{f.name}": f.endpoint for f in cfg.market.feeds})
    return out


class Health:
    """Problems found by `check`, with the transitions reported to `report(kind, payload)`."""

    def __init__(self, report: Callable[[str, dict[str, Any]], None]) -> None:
        self.report = report
        self.problems: dict[str, str] = {}  # "problem:subject" -> detail
        self._ticks: dict[str, tuple[int, float]] = {}  # feed -> (ticks, since when unchanged)
        self._write_errors = -1  # the AuditLog's failed commits at the last round (-1: unknown)

    def check(self, cfg: Any, system: Any, started: float, now: float | None = None) -> None:
        now = time.time() if now is None else now
        found: dict[str, str] = {}
        for key, ep in system_endpoints(cfg).items():
            if not reachable(ep):
                found[f"endpoint_unreachable:{key}"] = ep
        if system is not None:
            found.update(self._shards(system, started, now))
            found.update(self._feeds(system, now))
            found.update(self._journal(system))
        for key in sorted(set(found) - set(self.problems)):
            problem, subject = key.split(":", 1)
            self.report("system.health", {"problem": problem, "subject": subject,
                                          "detail": found[key], "state": "raised"})  # fmt: skip
        for key in sorted(set(self.problems) - set(found)):
            problem, subject = key.split(":", 1)
            self.report("system.health", {"problem": problem, "subject": subject,
                                          "state": "cleared"})  # fmt: skip
        self.problems = found

    def _shards(self, system: Any, started: float, now: float) -> dict[str, str]:
        if now - started < EMPTY_GRACE_S:
            return {}
        refs = [s.stats.remote() for s in system.shards]
        out: dict[str, str] = {}
        for k, ref in enumerate(refs):
            try:
                stats = ray.get(ref, timeout=STATS_TIMEOUT_S)
            except Exception:  # restarting: its life is the reconcile's business
                continue
            if int(stats.get("accounts", 0)) == 0:
                out[f"shard_empty:AccountShard.{k}"] = "no accounts"
        return out

    def _feeds(self, system: Any, now: float) -> dict[str, str]:
        out: dict[str, str] = {}
        for k, feed in enumerate(system.feeds):
            try:
                stats = ray.get(feed.stats.remote(), timeout=STATS_TIMEOUT_S)
            except Exception:
                continue
            name = str(stats.get("name", k))
            ticks = int(stats.get("ticks", 0))
            last, since = self._ticks.get(name, (-1, now))
            if ticks != last:
                since = now
            self._ticks[name] = (ticks, since)
            if now - since >= SILENT_S:
                out[f"feed_silent:MarketFeed.{name}"] = f"no tick for {now - since:.0f} s"
        return out

    def _journal(self, system: Any) -> dict[str, str]:
        out: dict[str, str] = {}
        refs = [system.audit.stats.remote(), system.executor.stats.remote()]
        try:
            audit = ray.get(refs[0], timeout=STATS_TIMEOUT_S)
            errors = int(audit.get("write_errors", 0))
            if errors > self._write_errors >= 0:  # a commit failed since the last round
                out["journal_unreachable:AuditLog"] = str(audit.get("last_error", ""))[:160]
            self._write_errors = errors
        except Exception as exc:  # its node is lost or it is restarting
            out["journal_unreachable:AuditLog"] = f"no answer ({type(exc).__name__})"
        try:
            executor = ray.get(refs[1], timeout=STATS_TIMEOUT_S)
        except Exception:  # restarting: its life is the reconcile's business
            return out
        held = int(executor.get("journal_held", 0))
        if held:
            out["journal_held:Executor"] = (
                f"{held} effects (orders among them) held {executor.get('journal_held_s', 0)} s"
                " behind a record the journal did not commit"
            )
        return out

    def lines(self) -> list[str]:
        return [f"{k.replace(':', ' ', 1)}: {v}" for k, v in sorted(self.problems.items())]
