"""Twilio SMS through the official `twilio` library.

The library builds every URL from https://api.twilio.com and offers no per-call headers, so we
hand the Client an http_client (a TwilioHttpClient subclass) that
- rewrites scheme/host (and an optional path prefix) to cfg["base_url"], after the library's own
  edge/region rewriting, so a local sink really receives the request;
- adds `I-Twilio-Idempotency-Token` from a context variable set around `messages.create`.

What holds (checked for issue 13 item 6, docs/delivery.md): Twilio's Messages and Calls create
take no idempotency key. Twilio's own library, generated from its API description (twilio 9.13),
has an `IdempotencyKey` parameter on other resources only (a call's Payments, UserDefinedMessages
and their subscriptions), none on `messages.create` or `calls.create`, and no per-request header;
`I-Twilio-Idempotency-Token` is the header Twilio puts on the webhooks it sends us, so that we can
recognise its retries. The token is sent anyway (harmless, and the local sink dedups on it), but
nothing relies on it: Twilio posts are bracketed by `notification.sending` like WeCom's and SMTP's
(rules.notify.model.NON_IDEMPOTENT), so a post stuck at a crash is named and its residual window
measured.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from gateways.channels.base import (
    DeliveryResult,
    Notification,
    install_log_redaction,
    is_loopback,
    redact,
    resolve_secret,
)

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.twilio.com"
IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"
MAX_BODY = 1600  # Twilio's limit for one Message body, in characters

_token: contextvars.ContextVar[str | None] = contextvars.ContextVar("twilio_idem", default=None)


class _RoutedHttpClient(TwilioHttpClient):
    """TwilioHttpClient that sends to base_url and carries the idempotency token."""

    def __init__(self, base_url: str | None, timeout: float) -> None:
        super().__init__(timeout=timeout, logger=log)
        self._base = urlsplit(base_url) if base_url else None
        if self.session is not None and base_url:
            self.session.trust_env = not is_loopback(base_url)

    def request(  # type: ignore[override]
        self,
        method: str,
        url: str,
        params: dict | None = None,
        data: dict | None = None,
        headers: dict | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        if self._base is not None:
            parts = urlsplit(url)
            path = self._base.path.rstrip("/") + parts.path
            url = urlunsplit((self._base.scheme, self._base.netloc, path, parts.query, ""))
        headers = dict(headers or {})
        token = _token.get()
        if token:
            headers[IDEMPOTENCY_HEADER] = token
        return super().request(method, url, params, data, headers, auth, timeout, allow_redirects)

    # The library logs full URLs (with the account SID) at INFO; keep ours quiet and redacted.
    def log_request(self, kwargs: dict) -> None:
        log.debug("twilio %s %s", kwargs["method"], redact(kwargs["url"]))

    def log_response(self, status_code: int, response: object) -> None:
        log.debug("twilio answered %s", status_code)


class TwilioSmsChannel:
    """Sends a Notification as one SMS to note.recipient (E.164)."""

    kind = "twilio_sms"

    def __init__(
        self,
        name: str,
        *,
        account_sid: str,
        auth_token: str,
        from_: str,
        base_url: str | None = None,
        status_callback: str | None = None,
        timeout: float = 5.0,
        max_body: int = MAX_BODY,
        callback_base: str | None = None,
    ) -> None:
        self.name = name
        self.base_url = base_url or DEFAULT_BASE_URL
        self.from_ = from_
        self.status_callback = status_callback
        self.callback_base = callback_base.rstrip("/") if callback_base else None
        self._validator = RequestValidator(auth_token)
        self.timeout = timeout
        self.max_body = min(max_body, MAX_BODY)
        self._secrets = (auth_token, account_sid)
        http = _RoutedHttpClient(base_url, timeout)
        self._client = Client(account_sid, auth_token, account_sid=account_sid, http_client=http)
        install_log_redaction()

    @classmethod
    def from_config(cls, cfg: Mapping) -> TwilioSmsChannel:
        """Keys: name, from, account_sid_env + auth_token_env (or account_sid + auth_token for a
        local sink), base_url, status_callback, timeout, max_body."""
        return cls(
            **twilio_config(cfg, "twilio_sms"),
            status_callback=cfg.get("status_callback"),
            max_body=int(cfg.get("max_body", MAX_BODY)),
        )

    def __repr__(self) -> str:
        return f"TwilioSmsChannel(name={self.name!r}, base_url={self.base_url!r})"

    def webhook_validator(self) -> RequestValidator:
        """Checks X-Twilio-Signature on the status callbacks of this account's messages."""
        return self._validator

    def callback_url(self, note: Notification) -> str | None:
        """A fixed status_callback wins; else the operator endpoint's, carrying the key."""
        if self.status_callback or not self.callback_base:
            return self.status_callback
        return f"{self.callback_base}/twilio/status?{urlencode({'key': note.idempotency_key})}"

    def body(self, note: Notification) -> str:
        """Plain text cut to max_body characters; the cut is marked with '...' because '…' is
        not GSM-7 and would turn an ASCII message into UCS-2 (70 instead of 160 a segment)."""
        text = note.plain()
        return text if len(text) <= self.max_body else text[: self.max_body - 3] + "..."

    def send(self, note: Notification) -> DeliveryResult:
        return twilio_send(
            f"twilio_sms {self.name}",
            self._secrets,
            self.timeout,
            note.idempotency_key,
            lambda: self._client.messages.create(
                to=note.recipient,
                from_=self.from_,
                body=self.body(note),
                status_callback=self.callback_url(note),
            ),
        )


def twilio_send(
    label: str, secrets: tuple[str, ...], timeout: float, key: str, create: Callable[[], Any]
) -> DeliveryResult:
    """One Twilio create call (message or call) with the idempotency token set, its answer
    mapped to a DeliveryResult: 429 and 5xx, timeouts and connection errors are worth a retry;
    other 4xx are not. Shared by the SMS and voice channels."""
    start = time.perf_counter()

    def fail(
        retry: bool, status: int | None, error: str, code: int | None = None
    ) -> DeliveryResult:
        error = redact(error, *secrets)
        log.info("%s: send failed (retry=%s): %s", label, retry, error)
        latency = (time.perf_counter() - start) * 1000
        return DeliveryResult(ok=False, retry=retry, status=status, error=error,
                              latency_ms=latency, code=code)  # fmt: skip

    def rejected(status: int, code: int | None, msg: str) -> DeliveryResult:
        retry = status == 429 or status >= 500
        return fail(retry, status, f"HTTP {status} twilio {code}: {msg}", code)

    reset = _token.set(key or None)
    try:
        resource = create()
    except TwilioRestException as exc:
        return rejected(exc.status, exc.code, str(exc.msg))
    except TwilioServiceException as exc:
        return rejected(exc.status, exc.code, f"{exc.title}: {exc.detail or ''}")
    except requests.Timeout:
        return fail(True, None, f"timeout after {timeout}s")
    except requests.RequestException as exc:
        return fail(True, None, f"{type(exc).__name__}: {exc}")
    except ValueError as exc:  # a 2xx whose body is not JSON: outcome unknown, the token dedups
        return fail(True, None, f"unreadable answer: {exc}")
    except TwilioException as exc:
        return fail(False, None, f"{type(exc).__name__}: {exc}")
    finally:
        _token.reset(reset)
    latency = (time.perf_counter() - start) * 1000
    return DeliveryResult(
        ok=True, retry=False, provider_id=resource.sid, status=201, latency_ms=latency
    )


def twilio_config(cfg: Mapping, kind: str) -> dict[str, Any]:
    """The settings every Twilio channel reads: name, credentials (environment variables, or
    literals for a local sink only), from, base_url, callback_base, timeout."""
    base_url = cfg.get("base_url")
    check_url = base_url or DEFAULT_BASE_URL
    if not cfg.get("from"):
        raise ValueError(f"channel {cfg.get('name', kind)!r}: missing 'from'")
    return {
        "name": cfg.get("name", kind),
        "account_sid": resolve_secret(cfg, "account_sid_env", "account_sid", base_url=check_url),
        "auth_token": resolve_secret(cfg, "auth_token_env", "auth_token", base_url=check_url),
        "from_": cfg["from"],
        "base_url": base_url,
        "callback_base": cfg.get("callback_base"),
        "timeout": float(cfg.get("timeout", 5.0)),
    }
