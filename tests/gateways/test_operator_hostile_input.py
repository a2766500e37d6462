"""Hostile input to the operator endpoint answers 4xx with a reason, never 500 (issue 13, item 8).

Before: a non-ASCII bearer token or link signature reached `hmac.compare_digest` (TypeError),
and a decision with `ts: "soon"` reached `float()` (ValueError): HTTP 500 each. Real HTTP to a
real server on a local port; the backend is a small in-memory one, as the endpoint is Ray-free.
"""

from __future__ import annotations

import http.client
import json
from typing import Any

import pytest

from gateways.operator_http.approvals import ApprovalServer
from gateways.operator_http.links import sign_link
from gateways.operator_http.server import OperatorServer, UnknownAlert

TOKEN = "tok-123"


class Backend:
    """Alerts known by id; decisions recorded (so a refused body provably never reaches it)."""

    def __init__(self) -> None:
        self.acked: list[tuple[str, str, str]] = []
        self.decided: list[dict[str, Any]] = []

    def ack(self, alert_id: str, by: str, via: str) -> dict[str, Any]:
        if alert_id != "A1":
            raise UnknownAlert(alert_id)
        self.acked.append((alert_id, by, via))
        return {"alert_id": alert_id, "acked_by": by}

    def list_alerts(self, state: str) -> list[dict[str, Any]]:
        return [{"alert_id": "A1", "state": "open"}]

    def provider_status(self, key: str, params: dict[str, str]) -> bool:
        return False

    def pending_records(self) -> list[dict[str, Any]]:
        return []

    def group_records(self) -> list[dict[str, Any]]:
        return []

    def decide(self, request: dict[str, Any]) -> dict[str, Any]:
        self.decided.append(request)
        return {"refused": "UNKNOWN_USER", "detail": "test roster is empty"}


def _call(server, method: str, path: str, headers: dict | None = None, body: bytes = b""):
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, json.loads(data) if data.startswith(b"{") else data
    finally:
        conn.close()


@pytest.fixture()
def operator():
    backend = Backend()
    with OperatorServer(backend, TOKEN) as server:
        yield server, backend


@pytest.fixture()
def approvals():
    backend = Backend()
    with ApprovalServer(backend, TOKEN) as server:
        yield server, backend


def test_non_ascii_bearer_token_is_401_with_a_reason(operator):
    server, _ = operator
    status, body = _call(server, "GET", "/alerts", {"Authorization": "Bearer t\u00f6k\u00e9n"})
    assert (status, body["error"]) == (401, "UNAUTHORIZED")
    assert "ASCII" in body["detail"]
    status, _ = _call(server, "GET", "/alerts", {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200


def test_non_ascii_link_signature_is_403_and_acks_nothing(operator):
    server, backend = operator
    good = sign_link("", TOKEN, "A1", "wang", 3600).split("?", 1)[1]
    bad = good.rsplit("sig=", 1)[0] + "sig=%C3%A9%C3%A9"
    status, body = _call(server, "GET", f"/ack/A1?{bad}")
    assert (status, body["error"]) == (403, "BAD_SIGNATURE")
    assert backend.acked == []
    status, _ = _call(server, "GET", f"/ack/A1?{good}")
    assert status == 200 and backend.acked == [("A1", "wang", "link")]


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("ts", "soon", "ts must be a number"),
        ("ts", True, "ts must be a number"),
        ("ts", None, "ts must be a number"),
        ("signature", "\u00e9" * 64, "signature"),
        ("signature", 12, "signature"),
        ("user", ["x"], "user must be a string"),
        ("ids", ["p1", 3], "ids must be a list"),
    ],
)
def test_malformed_decision_is_400_and_never_reaches_the_backend(approvals, field, value, says):
    server, backend = approvals
    request = {"action": "approve", "ids": ["p1"], "user": "risk.wang", "request_id": "r1",
               "ts": 1.0, "signature": "ab" * 32, field: value}  # fmt: skip
    status, body = _call(server, "POST", "/decisions", body=json.dumps(request).encode())
    assert (status, body["error"]) == (400, "MALFORMED")
    assert says in body["detail"]
    assert backend.decided == []


def test_a_well_typed_decision_still_reaches_the_backend(approvals):
    server, backend = approvals
    request = {"action": "approve", "ids": ["p1"], "user": "risk.wang", "request_id": "r1",
               "ts": 1.0, "signature": "ab" * 32}  # fmt: skip
    status, body = _call(server, "POST", "/decisions", body=json.dumps(request).encode())
    assert (status, body["error"]) == (403, "UNKNOWN_USER")
    assert [d["request_id"] for d in backend.decided] == ["r1"]
