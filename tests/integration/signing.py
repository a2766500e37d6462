"""Decisions as a person makes them (issue 13 item 5): signed with their secret, sent to the
Executor's `decide` — the CLI's path, without the CLI. Outside `demo_open` an unsigned
`executor.approve(...)` is refused (UNSIGNED_REQUEST)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import ray

from rules.approval import sign_request


def decide(
    executor: Any, action: str, ids: list[str], user: str, secret: str, group: str = "",
    reason: str = "", request_id: str = "",
) -> dict[str, Any]:  # fmt: skip
    fields = {"action": action, "user": user, "ids": list(ids), "group": group,
              "reason": reason, "ts": round(time.time(), 3),
              "request_id": request_id or uuid.uuid4().hex}  # fmt: skip
    signature = sign_request(secret, **fields) if secret else ""
    return ray.get(executor.decide.remote({**fields, "signature": signature, "via": "cli"}))


def approve(executor: Any, ids: list[str], user: str, secrets: dict[str, str]) -> list[dict]:
    """`executor.approve(ids, user)` signed by `user` (an unknown one signs nothing)."""
    return decide(executor, "approve", ids, user, secrets.get(user, ""))["results"]
