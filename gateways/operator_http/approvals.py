"""Approval routes of the operator endpoint: list proposals, decide them, signed per person.

Routes:
- GET  /proposals              Bearer token (the endpoint's): pending proposals and batch groups
- POST /decisions              JSON {action: "approve"|"reject", ids: [...], group: "", user,
                               reason, request_id, ts, signature}; the signature is
                               HMAC-SHA256 under the user's own secret of
                               `rules.approval.request_digest` (action, user, sorted ids, group,
                               reason, ts to 3 decimals, request_id joined by newlines), so every
                               decision is attributable to one authenticated person and a replayed
                               request is refused (REPLAYED_REQUEST), as is an old one
                               (STALE_REQUEST).

`handle_approval` is the whole of it, so the issue-7 operator endpoint can mount these routes by
calling it from its own dispatch; `ApprovalServer` serves them on their own port meanwhile (the
Executor starts it when approval.http_port >= 0). The backend does the checking and journals
every refusal; this module only speaks HTTP.
"""

from __future__ import annotations

import json
import math
from typing import Any, Protocol

from gateways.operator_http.server import Answer, OperatorServer, error_answer, json_answer


class ApprovalBackend(Protocol):
    def pending_records(self) -> list[dict[str, Any]]: ...

    def group_records(self) -> list[dict[str, Any]]: ...

    def decide(self, request: dict[str, Any]) -> dict[str, Any]: ...


REFUSAL_STATUS = {
    "UNKNOWN_USER": 403,
    "BAD_SIGNATURE": 401,
    "UNSIGNED_REQUEST": 401,
    "STALE_REQUEST": 401,
    "REPLAYED_REQUEST": 409,
    "MALFORMED": 400,
}


DECISION_FIELDS = ("action", "ids", "group", "user", "reason", "request_id", "ts", "signature")
TEXT_FIELDS = ("action", "group", "user", "reason", "request_id")


def malformed_decision(data: Any) -> str | None:
    """Why a decision body cannot be a request (one line), None when its fields are typed right:
    checked here so the signature check never meets a string `ts` or a non-ASCII signature."""
    if not isinstance(data, dict):
        return "body must be a JSON object with ids: [...]"
    ids = data.get("ids", [])
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        return "ids must be a list of proposal ids (strings)"
    for name in TEXT_FIELDS:
        if name in data and not isinstance(data[name], str):
            return f"{name} must be a string, not {type(data[name]).__name__}"
    ts = data.get("ts", 0.0)
    if isinstance(ts, bool) or not isinstance(ts, (int, float)) or not math.isfinite(ts):
        return f"ts must be a number of seconds since the epoch, not {ts!r}"[:200]
    signature = data.get("signature", "")
    if not isinstance(signature, str) or not signature.isascii():
        return "signature must be the hex HMAC-SHA256 of the request"
    return None


def handle_approval(
    server: OperatorServer,
    method: str,
    path: str,
    headers: Any,
    body: bytes,
    backend: ApprovalBackend,
) -> tuple[str, Answer] | None:
    """(route, answer) for the approval routes, None for any other path."""
    if path == "/proposals":
        if method != "GET":
            return "proposals", error_answer(405, "METHOD_NOT_ALLOWED", "GET /proposals")
        denied = server.bearer_denied(headers)
        if denied:
            return "proposals", denied
        return "proposals", json_answer(
            200, {"proposals": backend.pending_records(), "groups": backend.group_records()}
        )
    if path != "/decisions":
        return None
    if method != "POST":
        return "decisions", error_answer(405, "METHOD_NOT_ALLOWED", "POST /decisions")
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        data = None
    problem = malformed_decision(data)
    if problem:
        return "decisions", error_answer(400, "MALFORMED", problem)
    assert isinstance(data, dict)
    request = {k: data[k] for k in DECISION_FIELDS if k in data}
    request["via"] = "http"
    result = backend.decide(request)
    code = result.get("refused")
    if code:
        status = REFUSAL_STATUS.get(code, 403)
        return "decisions", json_answer(status, {"error": code, **result})
    return "decisions", json_answer(200, result)


class ApprovalServer(OperatorServer):
    """The approval routes on a port of their own, until the operator endpoint mounts them."""

    def __init__(self, backend: ApprovalBackend, token: str, **kwargs: Any) -> None:
        if not token:
            import secrets

            token = secrets.token_urlsafe(24)  # no token configured: GET /proposals stays locked
        super().__init__(backend, token, **kwargs)  # type: ignore[arg-type]
        self.approvals = backend

    def _route(
        self, method: str, path: str, query: dict, headers: Any, body: bytes, target: str
    ) -> tuple[str, Answer]:
        if path == "/healthz":
            return "healthz", json_answer(200, {"ok": True})
        found = handle_approval(self, method, path, headers, body, self.approvals)
        return found or ("other", error_answer(404, "NOT_FOUND", f"no route {method} {path}"))
