"""A local HTTP server that speaks the providers' wire formats: Twilio REST (Messages, Calls) and
the WeCom group robot.

We cannot reach Twilio or WeCom from tests or `make run`, and a mock at the Python level would
not exercise the real client libraries, HTTP, auth, status codes or timeouts. This sink does:
the channels talk to it exactly as they would to the provider, and tests inspect what arrived.

Twilio: POST /2010-04-01/Accounts/{AccountSid}/Messages.json (Basic auth, form-encoded), 201 with
a Message resource, optional signed status callbacks (sent, delivered); like Twilio, no
deduplication on `I-Twilio-Idempotency-Token` (a repeat is counted, and stored). Calls: see twilio_voice_sink (TwiML played, keypress posted back).
WeCom: POST /cgi-bin/webhook/send?key=KEY, HTTP 200 with errcode (0, 93000, 40008, 44004, 40058,
45009 at 20 messages per rolling 60 s per key).
Control: GET /_sink/messages[?provider=], GET /_sink/stats, POST /_sink/reset, POST /_sink/faults.

Each provider's part is a module of its own, next to this one: `twilio_sms_sink` (Messages),
`twilio_voice_sink` (Calls), `wecom_sink` (group robot); they write into one `SinkLog`.

Run alone: python -m gateways.sim.provider_sink --port 8790
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import random
import signal
import threading
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qs, urlsplit

from gateways.http_service import HttpService
from gateways.sim.sink_log import Answer, SinkLog, json_answer, twilio_error
from gateways.sim.twilio_sms_sink import TWILIO_IDEMPOTENCY_HEADER, TwilioMessages
from gateways.sim.twilio_voice_sink import CALLS_PATH, VoiceCalls
from gateways.sim.wecom_sink import WECOM_PATH, WeComRobot

log = logging.getLogger(__name__)

DEFAULT_ACCOUNT_SID = "AC" + "0123456789abcdef" * 2  # fake, for local runs only
DEFAULT_AUTH_TOKEN = "local-sink-auth-token"
DEFAULT_WECOM_KEY = "local-sink-robot-key"
FAULT_KINDS = ("5xx", "timeout", "errcode", "mixed")  # mixed: 5xx or timeout, at random
PROVIDERS = ("twilio_sms", "twilio_voice", "wecom")


class ProviderSink(HttpService):
    """Twilio + WeCom stand-in on 127.0.0.1, with fault injection and inspection."""

    server_version = "fengkong-provider-sink/1"
    thread_name = "provider-sink"
    poll_interval = 0.05

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        twilio_account_sid: str = DEFAULT_ACCOUNT_SID,
        twilio_auth_token: str = DEFAULT_AUTH_TOKEN,
        wecom_keys: Iterable[str] = (DEFAULT_WECOM_KEY,),
        wecom_rate_limit: int = 20,
        wecom_rate_window: float = 60.0,
        failure_rate: float = 0.0,
        failure_kind: str = "5xx",
        seed: int = 0,
        timeout_delay: float = 6.0,
        callback_delay: float = 0.05,
    ) -> None:
        if failure_kind not in FAULT_KINDS:
            raise ValueError(f"failure_kind must be one of {FAULT_KINDS}, not {failure_kind!r}")
        super().__init__(host, port)
        self.twilio_account_sid = twilio_account_sid
        self.failure_rate = failure_rate
        self.failure_kind = failure_kind
        self.timeout_delay = timeout_delay  # longer than the client's timeout
        self._rng = random.Random(seed)
        self.log = SinkLog(callback_delay)
        self._lock = self.log.lock
        self.sms = TwilioMessages(self.log, twilio_account_sid, twilio_auth_token)
        self.voice = VoiceCalls(self.log, twilio_account_sid, self.sms.validator)
        self.wecom = WeComRobot(self.log, wecom_keys, wecom_rate_limit, wecom_rate_window)
        # Seconds a provider holds an accepted request before answering (accepted, slow answer).
        self.latency_s: dict[str, float] = {}
        self._faults: list[tuple[str, str | None]] = []

    # ---- lifecycle (HttpService) -----------------------------------------------------------

    def start(self) -> str:
        """Start serving in a daemon thread; return the base URL (http://127.0.0.1:PORT)."""
        self.log.stop.clear()
        return super().start()

    def stop(self) -> None:
        """Stop serving; pending timeouts and status callbacks are abandoned."""
        self.log.stop.set()
        super().stop()

    @property
    def callback_delay(self) -> float:
        return self.log.callback_delay

    def respond(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes, client_ip: str
    ) -> Answer:
        return self.handle(method, target, headers, body, client_ip)

    # ---- test and benchmark controls -------------------------------------------------------

    def fail_next(self, n: int, kind: str = "5xx", provider: str | None = None) -> None:
        """Answer the next n provider requests (of `provider`, or any) with a fault:
        5xx = HTTP 503; timeout = wait timeout_delay, then 503; errcode = WeCom -1 "system busy"
        or Twilio 429 (20429). Faulted requests are not stored."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {FAULT_KINDS}, not {kind!r}")
        if provider is not None and provider not in PROVIDERS:
            raise ValueError(f"provider must be one of {PROVIDERS}, not {provider!r}")
        with self._lock:
            self._faults.extend([(kind, provider)] * n)

    def messages(self, provider: str | None = None) -> list[dict]:
        """Delivered messages, oldest first: provider, received_at, recipient (To or robot key),
        body, idempotency_key, plus provider fields (sid/from/status, or key/msgtype/mentions)."""
        with self._lock:
            found = [m for m in self.log.messages if provider is None or m["provider"] == provider]
            return copy.deepcopy(found)

    def set_callee(self, number: str, *, answer: bool = True, press: str | None = None) -> None:
        """Script the person at `number`: pick up or not, and which key to press at a Gather."""
        self.voice.set_callee(number, answer=answer, press=press)

    def call_callbacks(self) -> list[dict]:
        """Call status callbacks sent so far: url, params, http_status."""
        with self._lock:
            return copy.deepcopy(self.voice.callbacks)

    def callbacks(self) -> list[dict]:
        """Status callbacks sent so far: url, params, http status (or error)."""
        with self._lock:
            return copy.deepcopy(self.sms.callbacks)

    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self.log.stats)

    def reset(self) -> None:
        """Forget messages, idempotency tokens, rate windows, pending faults and counters."""
        with self._lock:
            self._clear()

    def _clear(self) -> None:
        self.log.clear()
        self._faults = []
        self.sms.clear()
        self.voice.clear()
        self.wecom.clear()

    # ---- request dispatch ------------------------------------------------------------------

    def handle(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes, ip: str
    ) -> Answer:
        """Answer one HTTP request: (status, headers, body)."""
        url = urlsplit(target)
        if url.path.startswith("/_sink/"):
            return self._control(method, url.path, url.query, body)
        if CALLS_PATH.fullmatch(url.path):
            provider = "twilio_voice"
        elif url.path.startswith("/2010-04-01/"):
            provider = "twilio_sms"
        elif url.path == WECOM_PATH:
            provider = "wecom"
        else:
            return json_answer(404, {"error": f"no such endpoint: {url.path}"})
        if method != "POST":
            return json_answer(405, {"error": "method not allowed"}, Allow="POST")
        fault = self._take_fault(provider)
        if fault is not None:
            return self._fault(provider, fault)
        if provider == "twilio_voice":
            answer = self._calls(url.path, headers, body)
        elif provider == "twilio_sms":
            answer = self.sms.create(url.path, headers, body)
        else:
            answer = self.wecom.send(url.query, headers, body, ip)
        if self.latency_s.get(provider):
            self.log.stop.wait(self.latency_s[provider])
        return answer

    def _take_fault(self, provider: str) -> str | None:
        with self._lock:
            self.log.stats[f"{provider}_requests"] += 1
            queued = (i for i, (_, only) in enumerate(self._faults) if only in (None, provider))
            index = next(queued, None)
            if index is not None:
                kind = self._faults.pop(index)[0]
            elif self.failure_rate and self._rng.random() < self.failure_rate:
                kind = self.failure_kind
            else:
                return None
            if kind == "mixed":
                kind = self._rng.choice(("5xx", "timeout"))
            self.log.stats[f"faults_{kind}"] += 1
            return kind

    def _fault(self, provider: str, kind: str) -> Answer:
        if kind == "timeout":
            self.log.stop.wait(self.timeout_delay)
        if kind == "errcode":
            if provider == "wecom":
                return json_answer(200, {"errcode": -1, "errmsg": "system busy"})
            return twilio_error(429, 20429, "Too Many Requests", **{"Retry-After": "1"})
        if provider == "wecom":
            page = b"<html><body><h1>503 Service Unavailable</h1></body></html>"
            return 503, {"Content-Type": "text/html"}, page
        return twilio_error(503, 20503, "Service Unavailable")

    def _control(self, method: str, path: str, query: str, body: bytes) -> Answer:
        if method == "GET" and path == "/_sink/messages":
            provider = parse_qs(query).get("provider", [None])[0]
            return json_answer(200, self.messages(provider))
        if method == "GET" and path == "/_sink/stats":
            return json_answer(200, self.stats())
        if method == "POST" and path == "/_sink/reset":
            self.reset()
            return json_answer(200, {"ok": True})
        if method == "POST" and path == "/_sink/faults":
            try:
                spec = json.loads(body or b"{}")
                if "failure_rate" in spec:
                    self.failure_rate = float(spec["failure_rate"])
                if spec.get("fail_next"):
                    self.fail_next(
                        int(spec["fail_next"]), spec.get("kind", "5xx"), spec.get("provider")
                    )
            except (ValueError, TypeError, AttributeError) as exc:
                return json_answer(400, {"error": str(exc)})
            return json_answer(200, {"ok": True})
        return json_answer(404, {"error": f"no such control endpoint: {method} {path}"})

    # ---- Twilio ------------------------------------------------------------------------------

    def _calls(self, path: str, headers: Mapping[str, str], body: bytes) -> Answer:
        sid = CALLS_PATH.fullmatch(path).group(1)  # type: ignore[union-attr]
        if not self.sms.auth_ok(headers.get("Authorization"), sid):
            self.log.count("twilio_voice_rejected")
            auth = {"WWW-Authenticate": 'Basic realm="Twilio API"'}
            return twilio_error(401, 20003, "Authenticate", **auth)
        form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        token = headers.get(TWILIO_IDEMPOTENCY_HEADER) or None
        answer = self.voice.create(form, token, json_answer, twilio_error)
        if answer[0] >= 400:
            self.log.count("twilio_voice_rejected")
        return answer


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8790)
    parser.add_argument("--account-sid", default=DEFAULT_ACCOUNT_SID)
    parser.add_argument("--auth-token", default=DEFAULT_AUTH_TOKEN)
    parser.add_argument("--wecom-key", action="append", help="accepted robot key (repeatable)")
    parser.add_argument("--rate-limit", type=int, default=20, help="WeCom messages per window")
    parser.add_argument("--rate-window", type=float, default=60.0)
    parser.add_argument("--failure-rate", type=float, default=0.0)
    parser.add_argument("--failure-kind", choices=FAULT_KINDS, default="5xx")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    sink = ProviderSink(
        args.host,
        args.port,
        twilio_account_sid=args.account_sid,
        twilio_auth_token=args.auth_token,
        wecom_keys=args.wecom_key or [DEFAULT_WECOM_KEY],
        wecom_rate_limit=args.rate_limit,
        wecom_rate_window=args.rate_window,
        failure_rate=args.failure_rate,
        failure_kind=args.failure_kind,
        seed=args.seed,
    )
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    print(sink.start(), flush=True)
    try:
        done.wait()
    finally:
        sink.stop()


if __name__ == "__main__":
    main()
