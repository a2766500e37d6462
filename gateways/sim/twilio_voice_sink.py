"""The Twilio Calls part of the provider sink: Twilio Programmable Voice's REST wire format
(the real client is `gateways.channels.twilio_voice`): create a call, play its TwiML, press a key.

POST /2010-04-01/Accounts/{AccountSid}/Calls.json (Basic auth, form-encoded: To, From, Twiml or
Url, StatusCallback, StatusCallbackEvent…) answers 201 with a Call resource, then "places" the
call in a thread the way Twilio would: signed status callbacks (initiated, ringing, answered →
in-progress, completed), the TwiML fetched from `Url` (signed POST) or taken inline, `<Say>`
recorded as what the callee heard, and at a `<Gather>` the callee's scripted keypress POSTed to
its `action` (signed, with `Digits`); the TwiML answered there is played too.

Callees are scripted per number with `set_callee(number, answer=True, press="1")`; by default a
callee answers and presses nothing.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qs, urlencode

from twilio.request_validator import RequestValidator

from gateways.sim.sink_log import SinkLog

CALLS_PATH = re.compile(r"/2010-04-01/Accounts/([^/]+)/Calls\.json")
_E164 = re.compile(r"\+[1-9]\d{1,14}")
EVENT_STATUS = {
    "initiated": "initiated",
    "ringing": "ringing",
    "answered": "in-progress",
    "completed": "completed",
}

Answer = tuple[int, dict[str, str], bytes]


def post_signed(
    validator: RequestValidator, url: str, params: Mapping[str, str], timeout: float = 5.0
) -> tuple[int | None, str]:
    """POST form params to url signed with X-Twilio-Signature; returns (status, body or error)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(
        url,
        data=urlencode(params).encode(),
        method="POST",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": validator.compute_signature(url, dict(params)),
            "User-Agent": "TwilioProxy/1.1",
        },
    )
    try:
        with opener.open(request, timeout=timeout) as answer:
            return answer.status, answer.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")
    except OSError as exc:
        return None, str(exc)


class VoiceCalls:
    """Calls placed on the sink; they land in the sink's `SinkLog` (its lock, messages, stats)."""

    def __init__(self, log: SinkLog, account_sid: str, validator: RequestValidator) -> None:
        self.log = log
        self._lock = log.lock
        self.account_sid = account_sid
        self._validator = validator
        self.callees: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, dict] = {}
        self.callbacks: list[dict] = []

    def _stat(self, name: str) -> None:
        self.log.count(name)

    def set_callee(self, number: str, *, answer: bool = True, press: str | None = None) -> None:
        with self._lock:
            self.callees[number] = {"answer": answer, "press": press}

    def clear(self) -> None:
        self.callees.clear()
        self.tokens.clear()
        self.callbacks.clear()

    def create(self, form: Mapping[str, list[str]], token: str | None, json_fn, err) -> Answer:  # noqa: ANN001
        """Answer a Calls create (auth already checked)."""
        one = {k: v[0] for k, v in form.items()}
        to, from_ = one.get("To", ""), one.get("From", "")
        if not to:
            return err(400, 21201, "No 'To' number is specified")
        if not _E164.fullmatch(to):
            return err(400, 21217, f"Phone number {to} does not appear to be valid")
        if not from_:
            return err(400, 21213, "No 'From' number is specified")
        twiml, url = one.get("Twiml"), one.get("Url")
        if not twiml and not url:
            return err(400, 21205, "Url parameter is required. Please provide a Url or Twiml.")
        if twiml:
            try:
                ET.fromstring(twiml)
            except ET.ParseError:
                return err(400, 12100, "Document parse failure")
        with self._lock:
            self.log.repeated(self.tokens, token, "twilio_voice")  # counted, never deduplicated
            resource = self._resource(one)
            record = {
                "provider": "twilio_voice",
                "received_at": time.time(),
                "recipient": to,
                "from": from_,
                "body": "",
                "said": [],
                "idempotency_key": token,
                "sid": resource["sid"],
                "status": "queued",
                "digits": None,
                "gather_action": None,
                "gather_http_status": None,
                "status_callback": one.get("StatusCallback"),
            }
            self.log.delivered(record, self.tokens, token, resource)
        events = form.get("StatusCallbackEvent") or ["completed"]
        threading.Thread(
            target=self._run,
            args=(record, twiml, url, one.get("StatusCallback"), events),
            name=f"twilio-call:{resource['sid']}",
            daemon=True,
        ).start()
        return json_fn(201, resource)

    def _resource(self, form: Mapping[str, str]) -> dict:
        sid = "CA" + secrets.token_hex(16)
        now = format_datetime(datetime.now(timezone.utc))
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Calls/{sid}"
        return {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "date_created": now,
            "date_updated": now,
            "direction": "outbound-api",
            "duration": None,
            "from": form["From"],
            "from_formatted": form["From"],
            "price": None,
            "sid": sid,
            "start_time": None,
            "status": "queued",
            "to": form["To"],
            "to_formatted": form["To"],
            "uri": f"{uri}.json",
        }

    # ---- the call ----------------------------------------------------------------------------

    def _params(self, record: dict, status: str) -> dict[str, str]:
        return {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "CallSid": record["sid"],
            "CallStatus": status,
            "Called": record["recipient"],
            "Direction": "outbound-api",
            "From": record["from"],
            "To": record["recipient"],
        }

    def _status(
        self, record: dict, url: str | None, events: list[str], event: str, **extra: str
    ) -> None:
        status = extra.pop("CallStatus", EVENT_STATUS[event])
        with self._lock:
            record["status"] = status
        if not url or event not in events:
            return
        params = {**self._params(record, status), "CallbackSource": "call-progress-events"}
        params.update({"Timestamp": format_datetime(datetime.now(timezone.utc)), **extra})
        code, text = post_signed(self._validator, url, params)
        with self._lock:
            self.callbacks.append({"url": url, "params": params, "http_status": code})

    def _run(
        self, record: dict, twiml: str | None, url: str | None, cb: str | None, events: list[str]
    ) -> None:
        if self.log.stop.wait(self.log.callback_delay):
            return
        self._status(record, cb, events, "initiated")
        self._status(record, cb, events, "ringing")
        with self._lock:
            callee = dict(self.callees.get(record["recipient"], {"answer": True, "press": None}))
        if not callee["answer"]:
            self._status(record, cb, events, "completed", CallStatus="no-answer")
            return
        started = time.time()
        self._status(record, cb, events, "answered")
        if url:
            code, twiml = post_signed(self._validator, url, self._params(record, "in-progress"))
            if code != 200:
                twiml = None
        if twiml:
            self._play(record, twiml, callee.get("press"))
        duration = str(max(1, round(time.time() - started)))
        self._status(record, cb, events, "completed", CallDuration=duration)
        self._stat("twilio_voice_completed")

    def _play(self, record: dict, twiml: str, press: str | None) -> None:
        """Walk the TwiML: Say is heard, Gather takes the scripted keypress, Hangup ends."""
        try:
            root = ET.fromstring(twiml)
        except ET.ParseError:
            self._stat("twilio_voice_bad_twiml")
            return
        for verb in root:
            if verb.tag == "Say":
                self._heard(record, verb)
            elif verb.tag == "Gather":
                for inner in verb.iter("Say"):
                    self._heard(record, inner)
                action = verb.get("action")
                if press and action:
                    params = {**self._params(record, "in-progress"), "Digits": press}
                    code, answer = post_signed(self._validator, action, params)
                    with self._lock:
                        record.update(digits=press, gather_action=action, gather_http_status=code)
                    if code == 200:
                        self._play(record, answer, None)
                    return
            elif verb.tag == "Hangup":
                return

    def _heard(self, record: dict, say: ET.Element) -> None:
        with self._lock:
            record["said"].append(
                {"language": say.get("language", "en-US"), "text": say.text or ""}
            )
            record["body"] = "\n".join(s["text"] for s in record["said"])


def parse_form(body: bytes) -> dict[str, list[str]]:
    return parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
