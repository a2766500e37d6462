"""The one door from the console to the running system: named actors, their public methods.

Every call the console makes to the risk loop is here, so when the Executor or the Notifier
change shape only this class is re-pointed. Handles are looked up by name (the supervisor
names them `<prefix><Role>[.<key>]` in its namespace), so a restarted actor is found again and
the Serve replica needs nothing passed to it but names. Calls fan out in one `ray.get` per
page: one call per shard, never one per account.
"""

from __future__ import annotations

import time
from typing import Any

import ray

from actors.common import actor_name
from rules.approval import sign_console

CALL_TIMEOUT_S = 10.0


class ConsoleSystem:
    def __init__(
        self, prefix: str, namespace: str | None, n_shards: int, commodities: list[str],
        console_key: str = "",
    ) -> None:  # fmt: skip
        self.prefix = prefix
        self._console_key = console_key  # vouches for its sessions' decisions (never logged)
        self.namespace = namespace
        self.n_shards = n_shards
        self.commodities = list(commodities)
        self._handles: dict[str, Any] = {}

    def _actor(self, role: str, key: str = "") -> Any:
        name = actor_name(self.prefix, role, key)
        if name not in self._handles:
            self._handles[name] = ray.get_actor(name, namespace=self.namespace)
        return self._handles[name]

    def _get(self, refs: Any) -> Any:
        return ray.get(refs, timeout=CALL_TIMEOUT_S)

    def shards(self) -> list[Any]:
        return [self._actor("AccountShard", str(k)) for k in range(self.n_shards)]

    # ---- accounts ------------------------------------------------------------------------------

    def top(self, n: int, by: str = "risk_degree", group: str = "") -> list[dict[str, Any]]:
        """The n riskiest accounts over all shards (each shard answers its own top n)."""
        parts = self._get([s.top.remote(n, by, group) for s in self.shards()])
        rows = [r for part in parts for r in part]
        ascending = by not in ("risk_degree", "exchange_risk_degree", "margin")
        rows.sort(key=lambda r: r[by] if ascending else -r[by])
        return rows[:n]

    def account(self, account_id: str) -> dict[str, Any] | None:
        found = self._get([s.accounts.remote([account_id]) for s in self.shards()])
        for part in found:
            if account_id in part:
                return part[account_id]
        return None

    def rollups(self, level: str | None = None) -> list[dict[str, Any]]:
        return self._get(self._actor("Hierarchy").rollups.remote(level))

    # ---- alerts --------------------------------------------------------------------------------

    def alerts(self, state: str = "all") -> list[dict[str, Any]]:
        """Pages of the Notifier (one per alert, or a digest), oldest first."""
        return self._get(self._actor("Notifier").alerts.remote(state))

    def raw_alerts(self, limit: int = 200) -> list[dict[str, Any]]:
        return self._get(self._actor("Correlator").alerts.remote(limit))

    def ack(self, alert_id: str, by: str, via: str = "console") -> dict[str, Any]:
        return self._get(self._actor("Notifier").ack.remote(alert_id, by, via))

    def outcomes(self, alert_id: str) -> list[dict[str, Any]]:
        return self._get(self._actor("Notifier").outcomes_for.remote(alert_id))

    def provider_status(self, key: str, params: dict[str, str]) -> bool:
        """A Twilio status callback, handed to the Notifier's state machine."""
        return self._get(self._actor("Notifier").provider_status.remote(key, params))

    def silence(self, matchers: list[str], duration_s: float, by: str, reason: str) -> Any:
        """A silence (matchers like "key=ACC000123") that ends after duration_s."""
        return self._get(
            self._actor("Correlator").add_silence.remote(matchers, by, reason, duration_s)
        )

    def silences(self) -> list[dict[str, Any]]:
        return self._get(self._actor("Correlator").list_silences.remote(False))

    # ---- approvals -----------------------------------------------------------------------------

    def pending(self) -> list[dict[str, Any]]:
        return self._get(self._actor("Executor").pending.remote())

    def groups(self) -> list[dict[str, Any]]:
        return self._get(self._actor("Executor").groups.remote())

    def proposal(self, proposal_id: str) -> dict[str, Any]:
        return self._get(self._actor("Executor").proposal.remote(proposal_id))

    def decide(
        self, action: str, ids: list[str], group: str, person: str, reason: str, request_id: str,
        session: str = "",
    ) -> dict[str, Any]:  # fmt: skip
        """A decision by a person the console has authenticated: the console signs the request
        and the session (or token) reference it came from with its per-deployment key, which
        the Executor checks (issue 13 item 5: it was an unsigned in-cluster call). Without a
        key the request goes unsigned and is refused outside `demo_open`; the Executor still
        applies its own roster, stages and four-eyes."""
        fields = {"action": action, "user": person, "ids": list(ids), "group": group,
                  "reason": reason, "ts": round(time.time(), 3), "request_id": request_id}  # fmt: skip
        signature = ""
        if self._console_key and session:
            signature = sign_console(self._console_key, session, **fields)
        request = {**fields, "signature": signature, "session": session if signature else "",
                   "via": "console"}  # fmt: skip
        return self._get(self._actor("Executor").decide.remote(request))

    def order_progress(self, window_s: float = 1800.0) -> list[dict[str, Any]]:
        """Decided proposals with their orders and fills, from the journal (one query)."""
        from app.console.orders_view import KINDS, fold

        since = time.time() - window_s
        return fold(self.journal(kinds=list(KINDS), since=since))

    def executor_stats(self) -> dict[str, Any]:
        return self._get(self._actor("Executor").stats.remote())

    # ---- rules, books, journal -----------------------------------------------------------------

    def rules_info(self) -> dict[str, Any]:
        return self._get(self._actor("Correlator").rules_info.remote())

    def books(self) -> dict[str, dict[str, Any]]:
        refs = {c: self._actor("ExposureBook", c).exposure.remote() for c in self.commodities}
        return dict(zip(refs, self._get(list(refs.values())), strict=True))

    def journal(self, **query: Any) -> list[dict[str, Any]]:
        return self._get(self._actor("AuditLog").query.remote(**query))

    def record(self, records: list[dict[str, Any]]) -> None:
        """Journal console actions (queued; the AuditLog commits them within its batch)."""
        self._actor("AuditLog").append.remote(records)

    def record_durable(self, records: list[dict[str, Any]]) -> None:
        self._get(self._actor("AuditLog").durable.remote(records))

    def status(self) -> dict[str, Any]:
        """Figures for the header: open alerts, pending proposals, the loop's rate."""
        n_open, pending, stats = self._get(
            [
                self._actor("Notifier").alerts.remote("open"),
                self._actor("Executor").pending.remote(),
                self._actor("Executor").stats.remote(),
            ]
        )
        return {"open_alerts": len(n_open), "pending": len(pending), "executor": stats}
