"""A local HTTP server that speaks the providers' wire formats: Twilio REST (Messages, Calls) and
the WeCom group robot.

We cannot reach Twilio or WeCom from tests or `make run`, and a mock at the Python level would
not exercise the real client libraries, HTTP, auth, status codes or timeouts. This sink does:
the channels talk to it exactly as they would to the provider, and tests inspect what arrived.

Twilio: POST /2010-04-01/Accounts/{AccountSid}/Messages.json (Basic auth, form-encoded), 201 with
a Message resource, optional signed status callbacks (sent, delivered), and deduplication on
`I-Twilio-Idempotency-Token`. Calls: see twilio_voice_sink (TwiML played, keypress posted back).
WeCom: POST /cgi-bin/webhook/send?key=KEY, HTTP 200 with errcode (0, 93000, 40008, 44004, 40058,
45009 at 20 messages per rolling 60 s per key).
Control: GET /_sink/messages[?provider=], GET /_sink/stats, POST /_sink/reset, POST /_sink/faults.

Run alone: python -m gateways.sim.provider_sink --port 8790
"""

from __future__ import annotations

import argparse
import base64
import copy
import hmac
import json
import logging
import math
import random
import re
import secrets
import signal
import socket
import threading
import time
import urllib.request
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

from twilio.request_validator import RequestValidator

from gateways.sim.twilio_voice_sink import CALLS_PATH, VoiceCalls

log = logging.getLogger(__name__)

DEFAULT_ACCOUNT_SID = "AC" + "0123456789abcdef" * 2  # fake, for local runs only
DEFAULT_AUTH_TOKEN = "local-sink-auth-token"
DEFAULT_WECOM_KEY = "local-sink-robot-key"
TWILIO_IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"
WECOM_IDEMPOTENCY_HEADER = "X-Fengkong-Idempotency-Key"
FAULT_KINDS = ("5xx", "timeout", "errcode", "mixed")  # mixed: 5xx or timeout, at random
PROVIDERS = ("twilio_sms", "twilio_voice", "wecom")
WECOM_MEMBERS_HEADER = "X-Fengkong-Notification-Keys"

_TWILIO_MESSAGES = re.compile(r"/2010-04-01/Accounts/([^/]+)/Messages\.json")
_E164 = re.compile(r"\+[1-9]\d{1,14}")
_WECOM_PATH = "/cgi-bin/webhook/send"
_WECOM_LIMITS = {"text": 2048, "markdown": 4096}  # bytes of UTF-8 content
_GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXT = set("^{}\\[~]|€\f")

Answer = tuple[int, dict[str, str], bytes]


def num_segments(body: str) -> int:
    """SMS segments as Twilio counts them: GSM-7 160/153, otherwise UCS-2 70/67 per segment."""
    if all(c in _GSM7 or c in _GSM7_EXT for c in body):
        units, single, multi = sum(2 if c in _GSM7_EXT else 1 for c in body), 160, 153
    else:
        units, single, multi = len(body.encode("utf-16-le")) // 2, 70, 67
    return 1 if units <= single else math.ceil(units / multi)


def _json(status: int, obj: object, **headers: str) -> Answer:
    body = json.dumps(obj, ensure_ascii=False).encode("utf-8")
    return status, {"Content-Type": "application/json; charset=utf-8", **headers}, body


def _twilio_error(status: int, code: int, message: str, **headers: str) -> Answer:
    more_info = f"https://www.twilio.com/docs/errors/{code}"
    obj = {"code": code, "message": message, "more_info": more_info, "status": status}
    return _json(status, obj, **headers)


class ProviderSink:
    """Twilio + WeCom stand-in on 127.0.0.1, with fault injection and inspection."""

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
        self.host, self.port = host, port
        self.twilio_account_sid = twilio_account_sid
        self._twilio_auth_token = twilio_auth_token
        self.wecom_keys = set(wecom_keys)
        self.wecom_rate_limit = wecom_rate_limit
        self.wecom_rate_window = wecom_rate_window
        self.failure_rate = failure_rate
        self.failure_kind = failure_kind
        self.timeout_delay = timeout_delay  # longer than the client's timeout
        self.callback_delay = callback_delay
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._validator = RequestValidator(twilio_auth_token)
        # Seconds a provider holds an accepted request before answering (accepted, slow answer).
        self.latency_s: dict[str, float] = {}
        self.voice = VoiceCalls(self)
        self._clear()

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> str:
        """Start serving in a daemon thread; return the base URL (http://127.0.0.1:PORT)."""
        if self._server is not None:
            return self.url
        self._stop.clear()
        self._server = _Server((self.host, self.port), _Handler)
        self._server.sink = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"provider-sink:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        """Stop serving; pending timeouts and status callbacks are abandoned."""
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> ProviderSink:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

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
            found = [m for m in self._messages if provider is None or m["provider"] == provider]
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
            return copy.deepcopy(self._callbacks)

    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self._stats)

    def reset(self) -> None:
        """Forget messages, idempotency tokens, rate windows, pending faults and counters."""
        with self._lock:
            self._clear()

    def _clear(self) -> None:
        self._messages: list[dict] = []
        self._by_sid: dict[str, dict] = {}
        self._tokens: dict[str, dict] = {}
        self._rate: defaultdict[str, deque[float]] = defaultdict(deque)
        self._faults: list[tuple[str, str | None]] = []
        self._callbacks: list[dict] = []
        self._stats: defaultdict[str, int] = defaultdict(int)
        self.voice.clear()

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
        elif url.path == _WECOM_PATH:
            provider = "wecom"
        else:
            return _json(404, {"error": f"no such endpoint: {url.path}"})
        if method != "POST":
            return _json(405, {"error": "method not allowed"}, Allow="POST")
        fault = self._take_fault(provider)
        if fault is not None:
            return self._fault(provider, fault)
        if provider == "twilio_voice":
            answer = self._calls(url.path, headers, body)
        elif provider == "twilio_sms":
            answer = self._twilio(url.path, headers, body)
        else:
            answer = self._wecom(url.query, headers, body, ip)
        if self.latency_s.get(provider):
            self._stop.wait(self.latency_s[provider])
        return answer

    def _take_fault(self, provider: str) -> str | None:
        with self._lock:
            self._stats[f"{provider}_requests"] += 1
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
            self._stats[f"faults_{kind}"] += 1
            return kind

    def _fault(self, provider: str, kind: str) -> Answer:
        if kind == "timeout":
            self._stop.wait(self.timeout_delay)
        if kind == "errcode":
            if provider == "wecom":
                return _json(200, {"errcode": -1, "errmsg": "system busy"})
            return _twilio_error(429, 20429, "Too Many Requests", **{"Retry-After": "1"})
        if provider == "wecom":
            page = b"<html><body><h1>503 Service Unavailable</h1></body></html>"
            return 503, {"Content-Type": "text/html"}, page
        return _twilio_error(503, 20503, "Service Unavailable")

    def _control(self, method: str, path: str, query: str, body: bytes) -> Answer:
        if method == "GET" and path == "/_sink/messages":
            provider = parse_qs(query).get("provider", [None])[0]
            return _json(200, self.messages(provider))
        if method == "GET" and path == "/_sink/stats":
            return _json(200, self.stats())
        if method == "POST" and path == "/_sink/reset":
            self.reset()
            return _json(200, {"ok": True})
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
                return _json(400, {"error": str(exc)})
            return _json(200, {"ok": True})
        return _json(404, {"error": f"no such control endpoint: {method} {path}"})

    # ---- Twilio ------------------------------------------------------------------------------

    def _calls(self, path: str, headers: Mapping[str, str], body: bytes) -> Answer:
        sid = CALLS_PATH.fullmatch(path).group(1)  # type: ignore[union-attr]
        if not self._twilio_auth_ok(headers.get("Authorization"), sid):
            self._count("twilio_voice_rejected")
            auth = {"WWW-Authenticate": 'Basic realm="Twilio API"'}
            return _twilio_error(401, 20003, "Authenticate", **auth)
        form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        token = headers.get(TWILIO_IDEMPOTENCY_HEADER) or None
        answer = self.voice.create(form, token, _json, _twilio_error)
        if answer[0] >= 400:
            self._count("twilio_voice_rejected")
        return answer

    def _twilio(self, path: str, headers: Mapping[str, str], body: bytes) -> Answer:
        match = _TWILIO_MESSAGES.fullmatch(path)
        if match is None:
            return _twilio_error(404, 20404, f"The requested resource {path} was not found")
        if not self._twilio_auth_ok(headers.get("Authorization"), match.group(1)):
            self._count("twilio_sms_rejected")
            auth = {"WWW-Authenticate": 'Basic realm="Twilio API"'}
            return _twilio_error(401, 20003, "Authenticate", **auth)
        text = body.decode("utf-8", "replace")
        form = {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}
        invalid = _invalid_sms(form)
        if invalid is not None:
            self._count("twilio_sms_rejected")
            return invalid
        token = headers.get(TWILIO_IDEMPOTENCY_HEADER) or None
        with self._lock:
            if token is not None and token in self._tokens:
                self._stats["twilio_sms_replayed"] += 1
                return _json(201, self._tokens[token])
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
            self._messages.append(record)
            self._by_sid[record["sid"]] = record
            if token is not None:
                self._tokens[token] = resource
            self._stats["twilio_sms_delivered"] += 1
        if form.get("StatusCallback"):
            threading.Thread(
                target=self._status_callbacks,
                args=(form["StatusCallback"], resource),
                name=f"twilio-callback:{resource['sid']}",
                daemon=True,
            ).start()
        return _json(201, resource)

    def _twilio_auth_ok(self, header: str | None, path_sid: str) -> bool:
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return (
            hmac.compare_digest(user, self.twilio_account_sid)
            and hmac.compare_digest(password, self._twilio_auth_token)
            and path_sid == self.twilio_account_sid
        )

    def _message_resource(self, form: Mapping[str, str]) -> dict:
        sid = "SM" + secrets.token_hex(16)
        now = format_datetime(datetime.now(timezone.utc))
        uri = f"/2010-04-01/Accounts/{self.twilio_account_sid}/Messages/{sid}"
        return {
            "account_sid": self.twilio_account_sid,
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
            if self._stop.wait(self.callback_delay):
                return
            with self._lock:
                record = self._by_sid.get(resource["sid"])
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
                    "X-Twilio-Signature": self._validator.compute_signature(url, params),
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
            with self._lock:
                self._callbacks.append(entry)

    # ---- WeCom ------------------------------------------------------------------------------

    def _wecom(self, query: str, headers: Mapping[str, str], body: bytes, ip: str) -> Answer:
        key = parse_qs(query).get("key", [""])[0]
        if key not in self.wecom_keys:
            return self._wecom_error(93000, "invalid webhook url", ip)
        try:
            payload = json.loads(body)
            msgtype = payload.get("msgtype")
        except (ValueError, AttributeError):
            return self._wecom_error(40008, "invalid message type", ip)
        if msgtype not in _WECOM_LIMITS:
            return self._wecom_error(40008, "invalid message type", ip)
        part = payload.get(msgtype)
        content = part.get("content") if isinstance(part, dict) else None
        if not isinstance(content, str) or not content:
            return self._wecom_error(44004, "empty content", ip)
        limit = _WECOM_LIMITS[msgtype]
        if len(content.encode("utf-8")) > limit:
            text = f"{msgtype}.content exceed max length {limit}. invalid Request Parameter"
            return self._wecom_error(40058, text, ip)
        with self._lock:
            now = time.monotonic()
            window = self._rate[key]
            while window and now - window[0] >= self.wecom_rate_window:
                window.popleft()
            if len(window) >= self.wecom_rate_limit:
                self._stats["wecom_rate_limited"] += 1
                return self._wecom_error(45009, "api freq out of limit", ip, count=False)
            window.append(now)
            self._messages.append(
                {
                    "provider": "wecom",
                    "received_at": time.time(),
                    "recipient": key,
                    "body": content,
                    "idempotency_key": headers.get(WECOM_IDEMPOTENCY_HEADER),
                    "notification_keys": [
                        k for k in (headers.get(WECOM_MEMBERS_HEADER) or "").split(",") if k
                    ],
                    "key": key,
                    "msgtype": msgtype,
                    "mentioned_mobile_list": list(part.get("mentioned_mobile_list") or []),
                    "mentioned_list": list(part.get("mentioned_list") or []),
                }
            )
            self._stats["wecom_delivered"] += 1
        return _json(200, {"errcode": 0, "errmsg": "ok"})

    def _wecom_error(self, code: int, text: str, ip: str, *, count: bool = True) -> Answer:
        if count:
            self._count("wecom_rejected")
        hint = "".join(str(random.randrange(10)) for _ in range(25))
        more = f"https://open.work.weixin.qq.com/devtool/query?e={code}"
        errmsg = f"{text}, hint: [{hint}], from ip: {ip}, more info at {more}"
        return _json(200, {"errcode": code, "errmsg": errmsg})

    def _count(self, name: str) -> None:
        with self._lock:
            self._stats[name] += 1


def _invalid_sms(form: Mapping[str, str]) -> Answer | None:
    """Twilio's 400 answers for a Message create, in the order Twilio checks them."""
    to = form.get("To", "")
    if not to:
        return _twilio_error(400, 21604, "A 'To' phone number is required.")
    if not _E164.fullmatch(to):
        return _twilio_error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
    if not form.get("From"):
        return _twilio_error(400, 21603, "A 'From' phone number is required.")
    body = form.get("Body", "")
    if not body:
        return _twilio_error(400, 21602, "Message body is required.")
    if len(body) > 1600:
        msg = "The concatenated message body exceeds the 1600 character limit."
        return _twilio_error(400, 21617, msg)
    return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    sink: ProviderSink


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fengkong-provider-sink/1"
    timeout = 30  # idle keep-alive connections end on their own
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in two writes; without this, Nagle's algorithm holds the body
        # until the client's delayed ACK (~40 ms a request on keep-alive connections).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, headers, payload = self.server.sink.handle(
            method, self.path, self.headers, body, self.client_address[0]
        )
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:  # the client gave up (e.g. after an injected timeout)
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s %s", self.command, urlsplit(self.path).path)


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
