"""Executor actor: proposals wait for authenticated people; approved ones become orders; fills
and a re-read of the account close the loop.

The work lives in actors/execution/ (state: rebuilt from the journal; core: proposals and
decisions under the approval policy of rules.approval; run: plans, orders, reports, re-pricing,
verification; watch: the clock for time limits, figures and the emergency policy). This module
makes it a Ray actor and adds the calls the correlator, the CLI and tests make. It is threaded
(max_concurrency) so `proposals` is answered while a batch approval executes.
"""

from __future__ import annotations

import collections
import os
from typing import Any

import ray

from actors.common import ACTOR_OPTIONS
from actors.execution.core import ExecutorCore
from rules.model import ProposalState

__all__ = ["Executor"]


@ray.remote(**{**ACTOR_OPTIONS, "max_concurrency": 8})
class Executor(ExecutorCore):
    def pending(self) -> list[dict[str, Any]]:
        """Pending proposals with their batch group, approval stage, size and preview plan."""
        return self.pending_records()

    def groups(self) -> list[dict[str, Any]]:
        return self.group_records()

    def proposal(self, proposal_id: str) -> dict[str, Any]:
        with self.lock:
            pids, _ = self._resolve([proposal_id], "")
            if len(pids) != 1:
                raise KeyError(f"no unique proposal {proposal_id!r}")
            pid = pids[0]
            p = self.state.proposals[pid]
            return {
                **p.to_record(),
                "group_id": self.state.group_of.get(pid, ""),
                "approval": self.state.approval[pid].describe(),
                "plan": self.state.plans.get(pid),
                "orders": [dict(self.state.orders[r]) for r in self.state.orders_of.get(pid, ())],
                "closed": self.state.closed.get(pid),
            }

    def approve(self, proposal_ids: list[str], user: str, group: str = "") -> list[dict[str, Any]]:
        """Approve proposals (one, or a batch after a market-wide shock) and execute them."""
        return self.simple_request("approve", proposal_ids, user, group=group)["results"]

    def approve_all_pending(self, user: str) -> list[dict[str, Any]]:
        with self.lock:
            ids = [p.proposal_id for p in self.state.by_state(ProposalState.PENDING)]
        return self.approve(ids, user) if ids else []

    def reject(self, proposal_id: str, user: str, reason: str = "") -> dict[str, Any]:
        return self.simple_request("reject", [proposal_id], user, reason)["results"][0]

    def http_url(self) -> str:
        return self.http.url if self.http is not None else ""

    def pid(self) -> int:
        """The worker process id (tests kill it to prove a restart resumes from the journal)."""
        return os.getpid()

    def stats(self) -> dict[str, Any]:
        with self.lock:
            states = collections.Counter(p.state.value for p in self.state.proposals.values())
            open_orders = sum(
                1
                for o in self.state.orders.values()
                if o["status"] not in ("filled", "cancelled", "rejected")
            )
            return {
                **dict(self.counts),
                "states": dict(states),
                "open_orders": open_orders,
                "verifying": len(self._verifying),
                "closed_loop_rate": self.closed_loop_rate(),
                "decision_to_close_ms": self.decision_to_close.percentiles((50, 99)),
                "proposal_to_fill_ms": self.proposal_to_fill.percentiles((50, 99)),
            }

    def latencies_ms(self) -> dict[str, list[float]]:
        return {
            "proposal_to_fill": self.proposal_to_fill.values().tolist(),
            "decision_to_close": self.decision_to_close.values().tolist(),
        }
