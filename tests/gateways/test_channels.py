"""Channels against the local provider sink over real HTTP (no mocks of the client libraries)."""

from __future__ import annotations

import queue
import random
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

import pytest
import requests
from twilio.request_validator import RequestValidator

from gateways.channels import build_channel
from gateways.channels.base import DeliveryResult, Notification
from gateways.channels.retry import backoff_delay, deliver_with_retry
from gateways.sim.provider_sink import DEFAULT_ACCOUNT_SID, ProviderSink
from tests.zmq_util import free_tcp_port

TOKEN = "test-auth-token-7f3a"
KEY = "robot-key-0001"
SENDER = "+15005550006"
PHONE = "+8613800138000"
CLIENT_TIMEOUT = 0.3


def make_sink(**kw: object) -> ProviderSink:
    opts: dict = {
        "twilio_auth_token": TOKEN,
        "wecom_keys": [KEY],
        "timeout_delay": 0.8,
        "callback_delay": 0.02,
    }
    opts.update(kw)
    return ProviderSink(**opts)


@pytest.fixture
def sink() -> Iterator[ProviderSink]:
    with make_sink() as s:
        yield s


def wecom(url: str, **kw: object):
    cfg = {"type": "wecom", "name": "ops-group", "base_url": url, "key": KEY}
    return build_channel({**cfg, "timeout": CLIENT_TIMEOUT, **kw})


def sms(url: str, **kw: object):
    cfg = {
        "type": "twilio_sms",
        "name": "duty-sms",
        "base_url": url,
        "account_sid": DEFAULT_ACCOUNT_SID,
        "auth_token": TOKEN,
        "from": SENDER,
        "timeout": CLIENT_TIMEOUT,
    }
    return build_channel({**cfg, **kw})


def note(**kw: object) -> Notification:
    base: dict = {
        "alert_id": "risk_degree:8801:w1",
        "idempotency_key": "risk_degree:8801:w1/duty-sms/+8613800138000",
        "severity": "critical",
        "title": "风险度超限 risk degree breach",
        "text": "账户 8801 风险度 0.93 > 0.80, available 12,000",
        "recipient": PHONE,
        "fields": {"risk_degree": 0.93},
    }
    base.update(kw)
    return Notification(**base)


def no_sleep(_: float) -> None:
    pass


# ---- WeCom -----------------------------------------------------------------------------------


def test_wecom_text_delivered(sink: ProviderSink) -> None:
    result = wecom(sink.url, mention_mobiles=["13900000000"]).send(note())
    assert result.ok and not result.retry and result.status == 200 and result.code == 0
    [msg] = sink.messages("wecom")
    assert msg["msgtype"] == "text" and msg["key"] == KEY
    assert (
        msg["body"]
        == "风险度超限 risk degree breach\n账户 8801 风险度 0.93 > 0.80, available 12,000"
    )
    assert msg["mentioned_mobile_list"] == ["13900000000", PHONE]
    assert msg["idempotency_key"] == note().idempotency_key
    assert sink.messages("twilio_sms") == []


def test_wecom_markdown_delivered(sink: ProviderSink) -> None:
    md = '### 风险度超限\n> 账户 **8801**: <font color="warning">0.93</font>'
    assert wecom(sink.url, markdown=True).send(note(markdown=md)).ok
    assert wecom(sink.url).send(note(markdown=md)).ok  # markdown off in cfg -> text
    first, second = sink.messages("wecom")
    assert (first["msgtype"], first["body"]) == ("markdown", md)
    assert second["msgtype"] == "text"


def test_wecom_long_text_cut_to_byte_limit(sink: ProviderSink) -> None:
    assert wecom(sink.url).send(note(text="风" * 1000)).ok  # 3000 bytes of UTF-8
    [msg] = sink.messages("wecom")
    assert len(msg["body"].encode()) <= 2048 and msg["body"].endswith("…")


def test_wecom_unknown_key_is_not_retried(sink: ProviderSink) -> None:
    attempts: list[tuple[int, DeliveryResult]] = []
    channel = wecom(sink.url, key="not-a-robot-key")
    result = deliver_with_retry(
        channel, note(), sleep=no_sleep, on_attempt=lambda n, r: attempts.append((n, r))
    )
    assert not result.ok and not result.retry and result.code == 93000
    assert "not-a-robot-key" not in (result.error or "")
    assert [n for n, _ in attempts] == [1]
    assert sink.messages() == []


def test_wecom_rate_limit_is_retryable() -> None:
    with make_sink(wecom_rate_limit=2) as s:
        channel = wecom(s.url)
        assert channel.send(note()).ok and channel.send(note()).ok
        limited = channel.send(note())
        assert not limited.ok and limited.retry and limited.code == 45009
        assert "api freq out of limit" in (limited.error or "")
        assert len(s.messages("wecom")) == 2


def test_wecom_5xx_timeout_and_busy_are_retryable(sink: ProviderSink) -> None:
    channel = wecom(sink.url)
    sink.fail_next(1, "5xx")
    sink.fail_next(1, "timeout")
    sink.fail_next(1, "errcode")
    five, slow, busy = channel.send(note()), channel.send(note()), channel.send(note())
    assert (five.ok, five.retry, five.status) == (False, True, 503)
    assert (slow.ok, slow.retry) == (False, True) and "timeout" in (slow.error or "")
    assert (busy.ok, busy.retry, busy.code) == (False, True, -1)
    assert sink.messages() == []


# ---- Twilio SMS ------------------------------------------------------------------------------


def test_twilio_sms_delivered_through_library(sink: ProviderSink) -> None:
    result = sms(sink.url).send(note())
    assert result.ok and result.status == 201
    assert result.provider_id and result.provider_id.startswith("SM")
    assert len(result.provider_id) == 34
    [msg] = sink.messages("twilio_sms")
    assert msg["sid"] == result.provider_id
    assert (msg["recipient"], msg["from"]) == (PHONE, SENDER)
    assert msg["body"].startswith("风险度超限")
    assert msg["idempotency_key"] == note().idempotency_key
    assert msg["num_segments"] == 1


def test_twilio_body_cut_to_1600_chars(sink: ProviderSink) -> None:
    assert sms(sink.url).send(note(title="risk", text="x" * 5000)).ok
    assert sms(sink.url).send(note(idempotency_key="k2", text="风" * 5000)).ok
    ascii_msg, chinese_msg = sink.messages("twilio_sms")
    assert len(ascii_msg["body"]) == 1600 and ascii_msg["body"].endswith("...")
    assert ascii_msg["num_segments"] == 11  # GSM-7: 153 characters a segment
    assert len(chinese_msg["body"]) == 1600 and chinese_msg["num_segments"] == 24  # UCS-2: 67


def test_twilio_bad_credentials_not_retried(sink: ProviderSink) -> None:
    result = sms(sink.url, auth_token="wrong-token-abc").send(note())
    assert (result.ok, result.retry, result.status, result.code) == (False, False, 401, 20003)
    assert "wrong-token-abc" not in (result.error or "")
    assert DEFAULT_ACCOUNT_SID not in (result.error or "")


def test_twilio_invalid_number_not_retried(sink: ProviderSink) -> None:
    result = sms(sink.url).send(note(recipient="13800138000"))
    assert (result.ok, result.retry, result.status, result.code) == (False, False, 400, 21211)
    assert sink.messages() == []


def test_twilio_503_429_and_timeout_are_retryable(sink: ProviderSink) -> None:
    channel = sms(sink.url)
    sink.fail_next(1, "5xx", provider="twilio_sms")
    sink.fail_next(1, "errcode", provider="twilio_sms")
    sink.fail_next(1, "timeout", provider="twilio_sms")
    five, limited, slow = channel.send(note()), channel.send(note()), channel.send(note())
    assert (five.ok, five.retry, five.status) == (False, True, 503)
    assert (limited.ok, limited.retry, limited.status, limited.code) == (False, True, 429, 20429)
    assert (slow.ok, slow.retry) == (False, True) and "timeout" in (slow.error or "")


def test_twilio_connection_refused_is_retryable() -> None:
    port = free_tcp_port()  # nothing listens there
    result = sms(f"http://127.0.0.1:{port}").send(note())
    assert not result.ok and result.retry and result.status is None
    assert DEFAULT_ACCOUNT_SID not in (result.error or "")


class _Receiver(BaseHTTPRequestHandler):
    got: queue.Queue

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        self.got.put((self.path, dict(self.headers), dict(parse_qsl(body))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_twilio_status_callback_arrives_signed(sink: ProviderSink) -> None:
    got: queue.Queue = queue.Queue()
    handler = type("Receiver", (_Receiver,), {"got": got})
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=receiver.serve_forever, kwargs={"poll_interval": 0.05}).start()
    try:
        callback = f"http://127.0.0.1:{receiver.server_address[1]}/twilio/status"
        result = sms(sink.url, status_callback=callback).send(note())
        assert result.ok
        seen = [got.get(timeout=3) for _ in range(2)]
    finally:
        receiver.shutdown()
        receiver.server_close()
    validator = RequestValidator(TOKEN)
    assert [params["MessageStatus"] for _, _, params in seen] == ["sent", "delivered"]
    for path, headers, params in seen:
        assert path == "/twilio/status"
        assert params["MessageSid"] == result.provider_id
        assert params["AccountSid"] == DEFAULT_ACCOUNT_SID and params["To"] == PHONE
        assert validator.validate(callback, params, headers["X-Twilio-Signature"])
    assert sink.messages("twilio_sms")[0]["status"] == "delivered"


def test_retry_recovers_after_two_5xx_and_delivers_once(sink: ProviderSink) -> None:
    sink.fail_next(2, "5xx")
    attempts: list[tuple[int, DeliveryResult]] = []
    delays: list[float] = []
    result = deliver_with_retry(
        sms(sink.url),
        note(),
        base_delay=0.01,
        sleep=delays.append,
        on_attempt=lambda n, r: attempts.append((n, r)),
    )
    assert result.ok
    assert [(n, r.ok, r.retry) for n, r in attempts] == [
        (1, False, True),
        (2, False, True),
        (3, True, False),
    ]
    assert len(delays) == 2
    assert len(sink.messages()) == 1


def test_a_repeated_idempotency_token_is_a_second_twilio_message(sink: ProviderSink) -> None:
    """Twilio's Messages create takes no idempotency key, so neither does its fake: a repeat
    is a second message (counted), which is why the Notifier brackets every Twilio post."""
    channel = sms(sink.url)
    first, second = channel.send(note()), channel.send(note())
    assert first.ok and second.ok and first.provider_id != second.provider_id
    other = channel.send(note(idempotency_key="risk_degree:8801:w2/duty-sms/+8613800138000"))
    assert other.provider_id not in (first.provider_id, second.provider_id)
    assert len(sink.messages("twilio_sms")) == 3
    assert sink.stats()["twilio_sms_repeated_token"] == 1


# ---- sink control, config and retry arithmetic ----------------------------------------------


def test_sink_http_inspection_and_reset(sink: ProviderSink) -> None:
    assert wecom(sink.url).send(note()).ok and sms(sink.url).send(note()).ok
    listed = requests.get(f"{sink.url}/_sink/messages", params={"provider": "wecom"}, timeout=2)
    assert [m["provider"] for m in listed.json()] == ["wecom"]
    assert len(requests.get(f"{sink.url}/_sink/messages", timeout=2).json()) == 2
    assert requests.post(f"{sink.url}/_sink/reset", timeout=2).json() == {"ok": True}
    assert sink.messages() == []


def test_build_channel_reads_secrets_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = {"type": "wecom", "name": "ops-group", "key_env": "FK_TEST_WECOM_KEY"}
    monkeypatch.delenv("FK_TEST_WECOM_KEY", raising=False)
    with pytest.raises(ValueError, match="ops-group.*FK_TEST_WECOM_KEY"):
        build_channel(cfg)
    monkeypatch.setenv("FK_TEST_WECOM_KEY", "secret-from-env")
    channel = build_channel(cfg)
    assert channel.kind == "wecom" and "secret-from-env" not in repr(channel)
    with pytest.raises(ValueError, match="local sink"):  # literal secret for a real provider
        build_channel({"type": "wecom", "name": "x", "key": "literal"})
    with pytest.raises(ValueError, match="unknown type"):
        build_channel({"type": "pager", "name": "x"})
    with pytest.raises(ValueError, match="duty-sms.*FK_TEST_SID"):
        build_channel(
            {"type": "twilio_sms", "name": "duty-sms", "from": SENDER,
             "account_sid_env": "FK_TEST_SID", "auth_token_env": "FK_TEST_TOKEN"}
        )  # fmt: skip


def test_retry_stops_on_permanent_failure_and_caps_attempts() -> None:
    class Flaky:
        name, kind = "fake", "fake"

        def __init__(self, results: list[DeliveryResult]) -> None:
            self.results, self.calls = results, 0

        def send(self, _: Notification) -> DeliveryResult:
            self.calls += 1
            return self.results.pop(0)

    permanent = Flaky([DeliveryResult(False, True), DeliveryResult(False, False)])
    assert not deliver_with_retry(permanent, note(), sleep=no_sleep).retry
    assert permanent.calls == 2
    always = Flaky([DeliveryResult(False, True)] * 10)
    assert deliver_with_retry(always, note(), max_attempts=3, sleep=no_sleep).retry
    assert always.calls == 3


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    rng = random.Random(1)
    plain = [backoff_delay(n, base_delay=0.2, max_delay=5.0, jitter=0) for n in range(1, 8)]
    assert plain == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]
    jittered = [backoff_delay(3, jitter=0.2, rng=rng) for _ in range(200)]
    assert all(0.64 <= d <= 0.96 for d in jittered) and len(set(jittered)) > 100
    assert all(backoff_delay(9, jitter=0.5, rng=rng) <= 5.0 for _ in range(50))
