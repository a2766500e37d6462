"""Decisions: authenticated people approve or reject proposals, one, many or a batch group.

A mixin of ExecutorCore. A request is checked as a whole first (known user, signature, age,
replay: rules.approval.check_request), then each proposal against its approval state
(rules.approval.decide); decisions and refusals are journaled durably before a completed
approval is executed, and every refusal carries its upper-case reason code.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from typing import TYPE_CHECKING, Any

from rules.approval import check_request, decide
from rules.model import ProposalState

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

if TYPE_CHECKING:
    from actors.execution.core import ExecutorCore

ACTOR = "Executor"


class DecisionMixin:
    def _secret(self: ExecutorCore, user: str) -> str | None:
        """A person's signing secret: their variable, else the secrets file outside the
        repository. Read when needed, never logged, never journaled."""
        for u in self.approval_cfg.get("users", ()):
            if u.get("name") == user:
                if u.get("secret_env") and os.environ.get(u["secret_env"]):
                    return os.environ[u["secret_env"]]
                break
        path = self.approval_cfg.get("secrets_file")
        if path and os.path.exists(path):
            with open(path, "rb") as fh:
                value = tomllib.load(fh).get(user)
            return str(value) if value else None
        return None

    def decide(self: ExecutorCore, request: dict[str, Any]) -> dict[str, Any]:
        """One decision request: {action: approve|reject, ids, group, user, reason, request_id,
        ts, signature, via}. Every refusal is journaled with its reason code."""
        with self.decide_lock:
            return self._decide(request)

    def _decide(self: ExecutorCore, request: dict[str, Any]) -> dict[str, Any]:
        now = time.time()
        action = str(request.get("action", ""))
        user = str(request.get("user", ""))
        via = str(request.get("via", "ray"))
        fields = {
            "action": action,
            "user": user,
            "ids": [str(i) for i in request.get("ids", ())],
            "group": str(request.get("group", "")),
            "reason": str(request.get("reason", "")),
            "ts": float(request.get("ts") or 0.0),
            "request_id": str(request.get("request_id", "")),
        }
        signature = str(request.get("signature", ""))
        with self.lock:
            pids, unknown = self._resolve(fields["ids"], fields["group"])
            code, detail = check_request(
                self.policy, user, self._secret(user), signature, fields, now,
                self.state.requests,
            )  # fmt: skip
            if not code and via == "http" and not signature:
                code, detail = "UNSIGNED_REQUEST", "decisions over HTTP must be signed"
        base = {"user": user, "via": via, "request_id": fields["request_id"], "decision": action}
        records, results, complete = [], [], []
        if code:
            targets = pids or [""]
            for pid in targets:
                key = self.state.proposals[pid].account_id if pid else ""
                records.append(
                    self._rec("refusal", key, pid, **base, code=code, reason=f"{code}: {detail}")
                )
                results.append({"proposal_id": pid, "refused": f"{code}: {detail}"})
            self._durable(records)
            self._apply(records)
            self.counts["refused"] += len(records)
            return {"request_id": fields["request_id"], "refused": code, "results": results}
        for ident in unknown:
            records.append(
                self._rec("refusal", "", ident, **base, code="UNKNOWN_PROPOSAL",
                          reason=f"UNKNOWN_PROPOSAL: no unique proposal {ident!r}")
            )  # fmt: skip
            results.append({"proposal_id": ident, "refused": f"UNKNOWN_PROPOSAL: {ident!r}"})
        with self.lock:
            for pid in pids:
                p = self.state.proposals[pid]
                st = self.state.approval[pid]
                out = decide(self.policy, st, user, action, now)
                if out.refused:
                    reason = f"{out.refused}: {out.detail}"
                    records.append(
                        self._rec("refusal", p.account_id, pid, **base, code=out.refused,
                                  reason=reason)
                    )  # fmt: skip
                    results.append({"proposal_id": pid, "state": p.state.value, "refused": reason})
                    continue
                records.append(
                    self._rec(
                        "decision", p.account_id, pid, **base, reason=fields["reason"],
                        signed=bool(signature), stage_index=st.stage, stage_name=out.stage_name,
                        stage_after=out.state.stage, status_after=out.state.status,
                        complete=out.complete, group_id=self.state.group_of.get(pid, ""),
                    )
                )  # fmt: skip
                results.append(
                    {"proposal_id": pid, "state": out.state.status, "stage": out.state.describe()}
                )
                if out.complete:
                    complete.append((pid, out.state.status))
        self._durable(records)
        self._apply(records)
        self.counts["refused"] += sum(1 for r in records if r["kind"] == "refusal")
        self.counts["decisions"] += sum(1 for r in records if r["kind"] == "decision")
        for pid, _status in complete:
            p = self.state.proposals[pid]
            self._m_decision.observe(max(0.0, now - p.created_ts), tags={"actor": ACTOR})
        rejected = [pid for pid, status in complete if status == "rejected"]
        approved = [pid for pid, status in complete if status == "approved"]
        for pid in rejected:
            self._close(pid, ProposalState.REJECTED, f"REJECTED by {user}: {fields['reason']}")
        executed = self._execute(approved) if approved else {}
        for r in results:
            r.update(executed.get(r["proposal_id"], {}))
        return {"request_id": fields["request_id"], "results": results}

    def _resolve(self: ExecutorCore, ids: list[str], group: str) -> tuple[list[str], list[str]]:
        """Full ids, unique prefixes, or every pending proposal of a batch group."""
        pids: list[str] = []
        unknown: list[str] = []
        for ident in ids:
            if ident in self.state.proposals:
                pids.append(ident)
                continue
            matches = [pid for pid in self.state.proposals if pid.startswith(ident)]
            (pids.append(matches[0]) if len(matches) == 1 and ident else unknown.append(ident))
        if group:
            members = self.state.groups.get(group, [])
            if not members:
                unknown.append(group)
            pids += [
                pid
                for pid in members
                if self.state.proposals[pid].state is ProposalState.PENDING and pid not in pids
            ]
        return list(dict.fromkeys(pids)), unknown

    def simple_request(
        self, action: str, ids: list[str], user: str, reason: str = "", group: str = ""
    ) -> dict[str, Any]:
        """A decision from a trusted caller inside the cluster (tests, the demo): a fresh id."""
        return self.decide(
            {"action": action, "ids": ids, "group": group, "user": user, "reason": reason,
             "request_id": uuid.uuid4().hex, "ts": time.time(), "via": "ray"}
        )  # fmt: skip
