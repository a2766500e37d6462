"""A Twilio voice call through the `twilio` library: `<Say>` the alert in Chinese and English,
`<Gather>` one digit, press 1 to acknowledge.

The TwiML travels inline with the Calls request (`Twiml` parameter), so a call does not depend on
our endpoint being reachable to start; only the keypress comes back, to the Gather `action` on the
operator endpoint (`{callback_base}/twilio/gather/{alert_id}`), and the call progress to
`{callback_base}/twilio/status?key=…`. Both are signed by Twilio (X-Twilio-Signature), which
the endpoint checks with the same auth token. Routing to a local sink and the idempotency token
reuse the SMS channel's HTTP client. Calls create takes no idempotency key either (see the SMS
channel): a call is bracketed by `notification.sending` like an SMS.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from urllib.parse import quote, urlencode

from twilio.request_validator import RequestValidator
from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse

from gateways.channels.base import (
    DeliveryResult,
    Notification,
    install_log_redaction,
)

# One routed client for every Twilio product: same base_url rewrite, same idempotency token.
from gateways.channels.twilio_sms.channel import (
    DEFAULT_BASE_URL,
    _RoutedHttpClient,
    twilio_config,
    twilio_send,
)

log = logging.getLogger(__name__)

SEVERITY_ZH = {"info": "提示", "warning": "警告", "critical": "严重", "emergency": "紧急"}
CALL_EVENTS = ["initiated", "ringing", "answered", "completed"]
SAY_MAX = 400  # characters read per language; a call is not the place for a digest


def twiml_for(note: Notification, gather_url: str | None, gather_timeout_s: int = 8) -> str:
    """The call's TwiML: the alert read in Chinese then English inside a one-digit Gather."""
    title = note.title[:SAY_MAX]
    zh = f"风控告警，{SEVERITY_ZH.get(note.severity, note.severity)}。{title}。确认请按 1。"
    en = f"Risk alert, severity {note.severity}. {title}. Press 1 to acknowledge."
    response = VoiceResponse()
    if gather_url:
        gather = response.gather(
            num_digits=1, action=gather_url, method="POST", timeout=gather_timeout_s
        )
        gather.say(zh, language="zh-CN")
        gather.say(en, language="en-US")
        response.say("未收到确认。", language="zh-CN")
        response.say("No acknowledgement received. Goodbye.", language="en-US")
    else:  # no endpoint to take the keypress: read the alert only
        response.say(zh, language="zh-CN")
        response.say(en, language="en-US")
    return str(response)


class TwilioVoiceChannel:
    """Places one call to note.recipient (E.164) that reads the alert."""

    kind = "twilio_voice"

    def __init__(
        self,
        name: str,
        *,
        account_sid: str,
        auth_token: str,
        from_: str,
        base_url: str | None = None,
        callback_base: str | None = None,
        timeout: float = 5.0,
        ring_timeout_s: int = 30,
        gather_timeout_s: int = 8,
    ) -> None:
        self.name = name
        self.base_url = base_url or DEFAULT_BASE_URL
        self.from_ = from_
        self.callback_base = callback_base.rstrip("/") if callback_base else None
        self.timeout = timeout
        self.ring_timeout_s = ring_timeout_s
        self.gather_timeout_s = gather_timeout_s
        self._secrets = (auth_token, account_sid)
        self._validator = RequestValidator(auth_token)
        http = _RoutedHttpClient(base_url, timeout)
        self._client = Client(account_sid, auth_token, account_sid=account_sid, http_client=http)
        install_log_redaction()

    @classmethod
    def from_config(cls, cfg: Mapping) -> TwilioVoiceChannel:
        """Keys: name, from, account_sid_env + auth_token_env (or literals for a local sink),
        base_url, callback_base (the operator endpoint; the Notifier fills it in), timeout,
        ring_timeout_s, gather_timeout_s."""
        return cls(
            **twilio_config(cfg, "twilio_voice"),
            ring_timeout_s=int(cfg.get("ring_timeout_s", 30)),
            gather_timeout_s=int(cfg.get("gather_timeout_s", 8)),
        )

    def __repr__(self) -> str:
        return f"TwilioVoiceChannel(name={self.name!r}, base_url={self.base_url!r})"

    def webhook_validator(self) -> RequestValidator:
        """Checks X-Twilio-Signature on the callbacks this account's calls make."""
        return self._validator

    def urls(self, note: Notification) -> tuple[str | None, str | None]:
        """(gather action, status callback) on the operator endpoint, or (None, None)."""
        if not self.callback_base:
            return None, None
        query = urlencode({"key": note.idempotency_key})
        gather = f"{self.callback_base}/twilio/gather/{quote(note.alert_id, safe='')}?{query}"
        return gather, f"{self.callback_base}/twilio/status?{query}"

    def send(self, note: Notification) -> DeliveryResult:
        gather, status = self.urls(note)
        extra: dict = {}
        if status:
            extra = {"status_callback": status, "status_callback_event": CALL_EVENTS}
        return twilio_send(
            f"twilio_voice {self.name}",
            self._secrets,
            self.timeout,
            note.idempotency_key,
            lambda: self._client.calls.create(
                to=note.recipient,
                from_=self.from_,
                twiml=twiml_for(note, gather, self.gather_timeout_s),
                timeout=self.ring_timeout_s,
                **extra,
            ),
        )
