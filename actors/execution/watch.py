"""The Executor's clock: verification, open orders, approval time limits, figures, emergencies.

One thread, one short round every `tick_s`; the slower duties (time limits, journaled figures of
accounts with open proposals, the emergency policy) run on their own intervals within it. The
figures it journals (`account_mark`: risk degree, equity, margin, the last price of each held
contract) are what the replay report charts, so the report needs nothing but the journal.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from typing import TYPE_CHECKING, Any

from rules.approval import EMERGENCY_USER, expired, overdue
from rules.model import ActionProposal, Alert, ProposalState, stable_id

if TYPE_CHECKING:
    from actors.execution.core import ExecutorCore

log = logging.getLogger(__name__)
ACTOR = "Executor"
MARK_BATCH = 2000  # accounts marked per round at most


class WatchMixin:
    def _watch_loop(self: ExecutorCore) -> None:
        next_slow = next_mark = 0.0
        while not self._stop.wait(self.s.tick_s):
            now = time.time()
            try:
                self._verify_round(now)
                self._orders_round(now)
                if now >= next_slow:
                    next_slow = now + 1.0
                    self._approval_round(now)
                    with self.lock:
                        self.counts["pruned"] += self.state.prune(now - self.s.resume_window_s)
                if now >= next_mark:
                    next_mark = now + self.s.mark_interval_s
                    self._mark_round(now)
            except Exception:  # the clock must keep ticking; the failure is counted and logged
                self.counts["watch_errors"] += 1
                log.exception("executor watch round failed")

    # ---- approval time limits ------------------------------------------------------------------

    def _approval_round(self: ExecutorCore, now: float) -> None:
        escalate: dict[tuple[str, int], list[str]] = {}
        expire: list[str] = []
        with self.lock:
            for p in self.state.by_state(ProposalState.PENDING):
                st = self.state.approval[p.proposal_id]
                if expired(self.policy, st, now):
                    expire.append(p.proposal_id)
                elif overdue(st, now) is not None:
                    gid = self.state.group_of.get(p.proposal_id, "")
                    escalate.setdefault((gid, st.stage), []).append(p.proposal_id)
        for pid in expire:
            self._close(
                pid, ProposalState.REJECTED,
                f"EXPIRED: no decision within {self.policy.expire_after_s:.0f} s", decided_by="system",
            )  # fmt: skip
        if escalate:
            self._escalate(escalate, now)

    def _escalate(self: ExecutorCore, groups: dict[tuple[str, int], list[str]], now: float) -> None:
        """One page per (group, stage) through the notifier, not one per proposal."""
        records, alerts = [], []
        for (gid, stage_index), pids in groups.items():
            st = self.state.approval[pids[0]]
            stage = st.stages[stage_index]
            waited = now - st.stage_started_ts
            first = self.state.proposals[pids[0]]
            key = first.account_id if len(pids) == 1 else gid
            records.append(
                self._rec("approval_escalated", key, gid, proposal_ids=pids, stage_index=stage_index,
                          stage_name=stage.name, roles=list(stage.roles), waited_s=waited)
            )  # fmt: skip
            alerts.append(
                Alert(
                    alert_id=stable_id("approval.timeout", gid, stage_index, *sorted(pids)[:1]),
                    rule_id="approval.timeout",
                    key=key,
                    severity="critical",
                    title=(
                        f"审批超时 approval overdue: {len(pids)} {first.kind} proposal(s) wait at "
                        f"'{stage.name}' ({', '.join(stage.roles)}) for {waited:.0f} s"
                    ),
                    value=waited,
                    threshold=stage.time_limit_s,
                    created_ts=now,
                    ingress_ts=min(self.state.proposals[p].created_ts for p in pids),
                    dimension="approval",
                    attributes={"group_id": gid, "proposal_ids": pids[:50], "stage": stage.name},
                )
            )
        self._durable(records)
        self._apply(records)
        self.counts["escalations"] += len(alerts)
        if self.notifier is not None:
            self.notifier.notify.remote(alerts)

    # ---- figures for the record ----------------------------------------------------------------

    def _mark_record(
        self: ExecutorCore, pid: str, view: dict[str, Any], phase: str
    ) -> dict[str, Any]:
        self._last_mark[view["account_id"]] = time.time()
        return self._rec(
            "account_mark", view["account_id"], pid, phase=phase,
            risk_degree=view["risk_degree"], equity=view["equity"], margin=view["margin"],
            available=view.get("available"),
            prices={x["instrument"]: x["last"] for x in view["positions"]},
            volumes={f"{x['instrument']}.{x['direction']}": x["volume"] for x in view["positions"]},
        )  # fmt: skip

    def _mark_round(self: ExecutorCore, now: float) -> None:
        """Journal the figures of accounts with open proposals; feed the emergency watch."""
        with self.lock:
            open_ = {}
            for p in self.state.by_state(
                ProposalState.PENDING, ProposalState.APPROVED, ProposalState.EXECUTING
            ):
                open_.setdefault(p.account_id, p.proposal_id)
        if not open_:
            return
        accounts = sorted(open_, key=lambda a: self._last_mark.get(a, 0.0))[:MARK_BATCH]
        views = self._views(accounts)
        records = [self._mark_record(open_[a], v, "watch") for a, v in views.items()]
        self._append(records)
        if self.policy.emergency.enabled:
            due = [a for a, v in views.items() if self.emergency.observe(a, v["risk_degree"], now)]
            if due:
                self._emergency(due, views)

    # ---- emergency policy ----------------------------------------------------------------------

    def _emergency(self: ExecutorCore, accounts: list[str], views: dict[str, Any]) -> None:
        """Act without approval: the policy is the decider, journaled as such, and every pending
        proposal of the account is closed as superseded."""
        em = self.policy.emergency
        now = time.time()
        proposals = []
        for a in accounts:
            pid = stable_id("proposal", "emergency", a, now)
            proposals.append(
                ActionProposal(pid, "", a, em.kind, 0.8, now, reason=(
                    f"EMERGENCY_POLICY: risk degree {views[a]['risk_degree']:.2%} above "
                    f"{em.risk_degree_above:.0%} for {em.for_s:.0f} s"))
            )  # fmt: skip
        self.on_proposals(proposals, proposer=EMERGENCY_USER)
        records = []
        with self.lock:
            for p in proposals:
                records.append(
                    self._rec("decision", p.account_id, p.proposal_id, decision="approve",
                              user=EMERGENCY_USER, via="emergency", request_id=uuid.uuid4().hex,
                              reason=p.reason, signed=False, stage_index=0, stage_name="emergency",
                              stage_after=len(self.state.approval[p.proposal_id].stages),
                              status_after="approved", complete=True)
                )  # fmt: skip
            superseded = [
                q.proposal_id
                for q in self.state.by_state(ProposalState.PENDING)
                if q.account_id in accounts
                and q.proposal_id not in {p.proposal_id for p in proposals}
            ]
        self._durable(records)
        self._apply(records)
        self.counts["emergencies"] += len(proposals)
        for pid in superseded:
            self._close(
                pid, ProposalState.REJECTED, "SUPERSEDED_BY_EMERGENCY", decided_by=EMERGENCY_USER
            )
        self._execute([p.proposal_id for p in proposals])

    # ---- operator HTTP -------------------------------------------------------------------------

    def _start_http(self: ExecutorCore) -> Any:
        port = int(self.approval_cfg.get("http_port", -1))
        if port < 0:
            return None
        from gateways.operator_http.approvals import ApprovalServer

        token = os.environ.get(self.approval_cfg.get("http_token_env", ""), "")
        server = ApprovalServer(
            self, token,
            host=self.approval_cfg.get("http_host", "127.0.0.1"), port=port,
        )  # fmt: skip
        server.start()
        return server
