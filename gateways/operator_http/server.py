"""The operator endpoint: an HTTP edge (`gateways.http_service`) that the Notifier runs in a thread.

Routes (every one authenticated; the way depends on who calls):
- GET  /healthz                          no secret, says only that it is up
- GET  /alerts[?state=open|acked|all]    Bearer token
- POST /ack/{alert_id}                   Bearer token; JSON or form body {"by": "…"} optional
- GET  /ack/{alert_id}?by=&exp=&sig=     signed reply link (e-mail button, SMS tail)
- POST /twilio/status?key=…              Twilio status callback, X-Twilio-Signature
- POST /twilio/gather/{alert_id}?key=…   Twilio <Gather> action, X-Twilio-Signature; Digits=1 acks

Bad input gets a clear error (JSON {"error": CODE, "detail": …}) with a 4xx status, is counted
by reason, and touches nothing else. The backend (the Notifier) does the work; this module only
speaks HTTP, so it stays free of Ray and testable on its own.
"""

from __future__ import annotations

import collections
import hmac
import json
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

from twilio.request_validator import RequestValidator

from gateways.http_service import HttpService, Reply
from gateways.operator_http.links import verify_link

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
Answer = tuple[int, str, bytes]  # status, content type, body


class UnknownAlert(KeyError):
    """The alert id is not one the Notifier knows (never paged, or outside the resume window)."""


class OperatorBackend(Protocol):
    def ack(self, alert_id: str, by: str, via: str) -> dict[str, Any]: ...

    def list_alerts(self, state: str) -> list[dict[str, Any]]: ...

    def provider_status(self, key: str, params: dict[str, str]) -> bool: ...


def json_answer(status: int, obj: object) -> Answer:
    return status, "application/json; charset=utf-8", json.dumps(obj, ensure_ascii=False).encode()


def error_answer(status: int, code: str, detail: str) -> Answer:
    return json_answer(status, {"error": code, "detail": detail})


def _twiml(*says: tuple[str, str], hangup: bool = True) -> Answer:
    parts = "".join(f'<Say language="{lang}">{escape(text)}</Say>' for lang, text in says)
    xml = f'<?xml version="1.0" encoding="UTF-8"?><Response>{parts}{"<Hangup/>" if hangup else ""}</Response>'
    return 200, "text/xml; charset=utf-8", xml.encode()


class OperatorServer(HttpService):
    """Serves the routes above for one backend."""

    server_version = "fengkong-operator/1"
    thread_name = "operator-http"
    max_body = MAX_BODY

    def __init__(
        self,
        backend: OperatorBackend,
        token: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        public_url: str = "",
        validators: Callable[[], Sequence[RequestValidator]] = lambda: (),
        on_request: Callable[[str, str], None] | None = None,
    ) -> None:
        if not token:
            raise ValueError("the operator endpoint needs a token")
        super().__init__(host, port)
        self.backend = backend
        self._token = token
        self._public_url = public_url.rstrip("/")
        self._validators = validators
        self._on_request = on_request
        self.errors: collections.Counter[str] = collections.Counter()
        self.requests: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()

    # ---- HTTP (HttpService) ------------------------------------------------------------------

    def respond(self, method: str, target: str, headers: Any, body: bytes, client_ip: str) -> Reply:
        status, kind, data = self.handle(method, target, headers, body)
        return status, {"Content-Type": kind}, data

    def too_large(self) -> Reply:
        status, kind, data = error_answer(413, "TOO_LARGE", f"body over {MAX_BODY} bytes")
        return status, {"Content-Type": kind}, data

    @property
    def url(self) -> str:
        """The base URL providers and links use (public_url when set behind a proxy)."""
        return self._public_url or f"http://{self.host}:{self.port}"

    def counts(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {"requests": dict(self.requests), "errors": dict(self.errors)}

    # ---- dispatch ----------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: Any, body: bytes) -> Answer:
        url = urlsplit(target)
        path = url.path.rstrip("/") or "/"
        query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        route, answer = self._route(method, path, query, headers, body, target)
        outcome = "ok" if answer[0] < 400 else json.loads(answer[2]).get("error", "ERROR")
        with self._lock:
            self.requests[route] += 1
            if answer[0] >= 400:
                self.errors[outcome] += 1
        if self._on_request is not None:
            self._on_request(route, outcome)
        return answer

    def _route(
        self, method: str, path: str, query: dict, headers: Any, body: bytes, target: str
    ) -> tuple[str, Answer]:
        parts = path.strip("/").split("/")
        if path == "/healthz":
            return "healthz", json_answer(200, {"ok": True})
        if parts[0] == "alerts" and len(parts) == 1:
            if method != "GET":
                return "alerts", error_answer(405, "METHOD_NOT_ALLOWED", "GET /alerts")
            return "alerts", self.bearer_denied(headers) or self._alerts(query)
        if parts[0] == "ack" and len(parts) == 2:
            alert_id = unquote(parts[1])
            if method == "POST":
                return "ack", self.bearer_denied(headers) or self._ack_post(alert_id, headers, body)
            return "ack_link", self._ack_link(alert_id, query)
        if parts[0] == "twilio" and method == "POST":
            form = _form(body)
            if form is None:
                return "twilio", error_answer(400, "MALFORMED", "body is not form-encoded UTF-8")
            denied = self._twilio_signed(target, headers, form)
            if parts[1:] == ["status"]:
                return "twilio_status", denied or self._status(query, form)
            if len(parts) == 3 and parts[1] == "gather":
                return "twilio_gather", denied or self._gather(unquote(parts[2]), form)
        return "other", error_answer(404, "NOT_FOUND", f"no route {method} {path}")

    # ---- authentication ----------------------------------------------------------------------

    def bearer_denied(self, headers: Any) -> Answer | None:
        """None when the request carries the endpoint's token, else the 401/403 answer."""
        given = headers.get("Authorization") or ""
        if not given.startswith("Bearer "):
            return error_answer(401, "UNAUTHORIZED", "Authorization: Bearer <token> required")
        token = given[7:].strip()
        if not token.isascii():  # compare_digest takes only ASCII str; a token is ASCII
            return error_answer(401, "UNAUTHORIZED", "the token must be ASCII")
        if not hmac.compare_digest(token.encode(), self._token.encode()):
            return error_answer(401, "UNAUTHORIZED", "bad token")
        return None

    def _twilio_signed(self, target: str, headers: Any, form: dict[str, str]) -> Answer | None:
        signature = headers.get("X-Twilio-Signature") or ""
        url = self.url + target
        if signature and any(v.validate(url, form, signature) for v in self._validators()):
            return None
        return error_answer(403, "BAD_SIGNATURE", "X-Twilio-Signature missing or invalid")

    # ---- handlers ----------------------------------------------------------------------------

    def _alerts(self, query: dict) -> Answer:
        state = query.get("state", "all")
        if state not in ("open", "acked", "all"):
            return error_answer(400, "MALFORMED", "state must be open, acked or all")
        return json_answer(200, {"alerts": self.backend.list_alerts(state)})

    def _ack(self, alert_id: str, by: str, via: str) -> Answer:
        try:
            return json_answer(200, self.backend.ack(alert_id, by, via))
        except UnknownAlert:
            return error_answer(404, "UNKNOWN_ALERT", f"no alert {alert_id!r}")

    def _ack_post(self, alert_id: str, headers: Any, body: bytes) -> Answer:
        by = "http"
        if body:
            kind = headers.get("Content-Type") or ""
            try:
                data = json.loads(body) if "json" in kind else _form(body)
            except ValueError:
                data = None
            if not isinstance(data, dict) or not isinstance(data.get("by", ""), str):
                return error_answer(400, "MALFORMED", 'body must be JSON or a form with "by"')
            by = data.get("by") or by
        return self._ack(alert_id, by[:100], "http")

    def _ack_link(self, alert_id: str, query: dict) -> Answer:
        missing = [k for k in ("by", "exp", "sig") if not query.get(k)]
        if missing:
            return error_answer(400, "MALFORMED", f"reply link lacks {missing}")
        reason = verify_link(self._token, alert_id, query["by"], query["exp"], query["sig"])
        if reason:
            return error_answer(403, reason, "the reply link is not valid")
        status, _kind, body = self._ack(alert_id, query["by"], "link")
        if status != 200:
            return status, _kind, body
        page = f"<!doctype html><p>已确认 Acknowledged: {escape(alert_id)}</p>"
        return 200, "text/html; charset=utf-8", page.encode()

    def _status(self, query: dict, form: dict[str, str]) -> Answer:
        key = query.get("key", "")
        if not key:
            return error_answer(400, "MALFORMED", "status callback without ?key=")
        if not self.backend.provider_status(key, form):
            return error_answer(404, "UNKNOWN_NOTIFICATION", f"no notification {key!r}")
        return 204, "text/plain", b""

    def _gather(self, alert_id: str, form: dict[str, str]) -> Answer:
        digits = form.get("Digits", "")
        if digits != "1":
            return _twiml(("zh-CN", "未确认。"), ("en-US", "Not acknowledged. Goodbye."))
        status, _kind, body = self._ack(
            alert_id, form.get("To") or form.get("Called", "?"), "voice"
        )
        if status != 200:
            return status, _kind, body
        return _twiml(("zh-CN", "已确认，谢谢。"), ("en-US", "Acknowledged. Thank you."))


def _form(body: bytes) -> dict[str, str] | None:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}
