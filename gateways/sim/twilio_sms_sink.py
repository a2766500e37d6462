"""The Twilio Messages part of the provider sink: Twilio Programmable Messaging's REST wire format.

POST /2010-04-01/Accounts/{AccountSid}/Messages.json (Basic auth with the account SID and auth
token, form-encoded To, From, Body, StatusCallback) answers 201 with a Message resource, or the
400/401 error Twilio gives, in Twilio's order of checks; a repeated `I-Twilio-Idempotency-Token`
answers the first resource again and sends nothing. With a StatusCallback, "sent" then
"delivered" are POSTed back, signed with X-Twilio-Signature as Twilio signs them. The real
client is `gateways.channels.twilio_sms`.
"""

from __future__ import annotations

import base64
import hmac
import math
import re
import secrets
import threading
import time
import urllib.request
from collections.abc import Mapping
from datetime import datetime, timezone
from email.utils import format_datetime
from urllib.parse import parse_qs, urlencode

from twilio.request_validator import RequestValidator

from gateways.sim.sink_log import Answer, SinkLog, json_answer, twilio_error

TWILIO_IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"
MESSAGES_PATH = re.compile(r"/2010-04-01/Accounts/([^/]+)/Messages\.json")
_E164 = re.compile(r"\+[1-9]\d{1,14}")
_GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXT = set("^{}\\[~]|€\f")


def num_segments(body: str) -> int:
    """SMS segments as Twilio counts them: GSM-7 160/153, otherwise UCS-2 70/67 per segment."""
    if all(c in _GSM7 or c in _GSM7_EXT for c in body):
        units, single, multi = sum(2 if c in _GSM7_EXT else 1 for c in body), 160, 153
    else:
        units, single, multi = len(body.encode("utf-16-le")) // 2, 70, 67
    return 1 if units <= single else math.ceil(units / multi)


class TwilioMessages:
    """Messages created on the sink, their idempotency tokens and status callbacks."""

    def __init__(self, log: SinkLog, account_sid: str, auth_token: str) -> None:
        self.log = log
        self.account_sid = account_sid
        self._auth_token = auth_token
        self.validator = RequestValidator(auth_token)
        self.clear()

    def clear(self) -> None:
        self.by_sid: dict[str, dict] = {}
        self.tokens: dict[str, dict] = {}
        self.callbacks: list[dict] = []

    def create(self, path: str, headers: Mapping[str, str], body: bytes) -> Answer:
        """POST .../Messages.json: 201 with a Message resource, or Twilio's 4xx error."""
        match = MESSAGES_PATH.fullmatch(path)
        if match is None:
            return twilio_error(404, 20404, f"The requested resource {path} was not found")
        if not self.auth_ok(headers.get("Authorization"), match.group(1)):
            self.log.count("twilio_sms_rejected")
            auth = {"WWW-Authenticate": 'Basic realm="Twilio API"'}
            return twilio_error(401, 20003, "Authenticate", **auth)
        text = body.decode("utf-8", "replace")
        form = {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}
        invalid = invalid_sms(form)
        if invalid is not None:
            self.log.count("twilio_sms_rejected")
            return invalid
        token = headers.get(TWILIO_IDEMPOTENCY_HEADER) or None
        with self.log.lock:
            self.log.repeated(self.tokens, token, "twilio_sms")  # counted, never deduplicated
            resource = self._message_resource(form)
            record = {
                "provider": "twilio_sms",
                "received_at": time.time(),
                "recipient": form["To"],
                "body": form["Body"],
                "idempotency_key": token,
                "sid": resource["sid"],
                "from": form["From"],
                "status": "queued",
                "status_callback": form.get("StatusCallback"),
                "num_segments": int(resource["num_segments"]),
            }
            self.by_sid[record["sid"]] = record
            self.log.delivered(record, self.tokens, token, resource)
        if form.get("StatusCallback"):
            threading.Thread(
                target=self._status_callbacks,
                args=(form["StatusCallback"], resource),
                name=f"twilio-callback:{resource['sid']}",
                daemon=True,
            ).start()
        return json_answer(201, resource)

    def auth_ok(self, header: str | None, path_sid: str) -> bool:
        """Basic auth with the account SID and auth token, for the SID in the path."""
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return (
            hmac.compare_digest(user, self.account_sid)
            and hmac.compare_digest(password, self._auth_token)
            and path_sid == self.account_sid
        )

    def _message_resource(self, form: Mapping[str, str]) -> dict:
        sid = "SM" + secrets.token_hex(16)
        now = format_datetime(datetime.now(timezone.utc))
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}"
        return {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": form["Body"],
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": form["From"],
            "messaging_service_sid": None,
            "num_media": "0",
            "num_segments": str(num_segments(form["Body"])),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "queued",
            "subresource_uris": {"media": f"{uri}/Media.json"},
            "to": form["To"],
            "uri": f"{uri}.json",
        }

    def _status_callbacks(self, url: str, resource: Mapping[str, str]) -> None:
        """POST 'sent' then 'delivered' to the StatusCallback URL, signed like Twilio does."""
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        for status in ("sent", "delivered"):
            if self.log.stop.wait(self.log.callback_delay):
                return
            with self.log.lock:
                record = self.by_sid.get(resource["sid"])
                if record is not None:
                    record["status"] = status
            params = {
                "AccountSid": resource["account_sid"],
                "ApiVersion": "2010-04-01",
                "From": resource["from"],
                "MessageSid": resource["sid"],
                "MessageStatus": status,
                "SmsSid": resource["sid"],
                "SmsStatus": status,
                "To": resource["to"],
            }
            request = urllib.request.Request(
                url,
                data=urlencode(params).encode(),
                method="POST",
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "X-Twilio-Signature": self.validator.compute_signature(url, params),
                    TWILIO_IDEMPOTENCY_HEADER: f"{resource['sid']}-{status}",
                    "User-Agent": "TwilioProxy/1.1",
                },
            )
            entry: dict = {"url": url, "params": params}
            try:
                with opener.open(request, timeout=5) as answer:
                    entry["http_status"] = answer.status
            except OSError as exc:  # URLError/HTTPError/timeouts: Twilio would log and move on
                entry["error"] = str(exc)
            with self.log.lock:
                self.callbacks.append(entry)


def invalid_sms(form: Mapping[str, str]) -> Answer | None:
    """Twilio's 400 answers for a Message create, in the order Twilio checks them."""
    to = form.get("To", "")
    if not to:
        return twilio_error(400, 21604, "A 'To' phone number is required.")
    if not _E164.fullmatch(to):
        return twilio_error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
    if not form.get("From"):
        return twilio_error(400, 21603, "A 'From' phone number is required.")
    body = form.get("Body", "")
    if not body:
        return twilio_error(400, 21602, "Message body is required.")
    if len(body) > 1600:
        msg = "The concatenated message body exceeds the 1600 character limit."
        return twilio_error(400, 21617, msg)
    return None
