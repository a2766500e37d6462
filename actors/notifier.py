"""Notifier actor: alerts to people, on every channel, with retry, escalation and an outbox.

The work lives in actors/notify/ (core: accept → group → page → escalate → lanes → outcome;
outbox: what the journal must hold to resume; lanes: per-channel queue, rate limit, breaker,
coalescing; delivery: send, retry, failover). This module makes it a Ray actor and adds the calls
other actors and the CLI make. It is threaded (max_concurrency) so an acknowledgement from the
CLI is answered while a `drain` waits.
"""

from __future__ import annotations

import os
from typing import Any

import ray

from actors.common import ACTOR_OPTIONS
from actors.notify.core import NotifierCore, NotifierReads
from actors.notify.render import render
from gateways.operator_http import UnknownAlert

__all__ = ["Notifier", "render"]


@ray.remote(**{**ACTOR_OPTIONS, "max_concurrency": 16})
class Notifier(NotifierReads, NotifierCore):
    def ack(self, alert_id: str, by: str = "cli", via: str = "cli") -> dict[str, Any]:
        """Acknowledge an alert (or page) id; an unknown id answers {"error": "UNKNOWN_ALERT"}."""
        try:
            return self._ack(alert_id, by, via)
        except UnknownAlert:
            return {"error": "UNKNOWN_ALERT", "detail": f"no alert {alert_id!r}"}

    def pid(self) -> int:
        """The worker process id (the crash test kills it)."""
        return os.getpid()

    def endpoint(self) -> str:
        """Base URL of the operator endpoint ("" when disabled)."""
        return self.operator.url if self.operator is not None else ""
