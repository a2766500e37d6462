"""Voice and e-mail channels against the local sinks over real HTTP and SMTP."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

import pytest
from twilio.request_validator import RequestValidator

from gateways.channels import build_channel
from gateways.channels.base import Notification
from gateways.channels.twilio_voice import twiml_for
from gateways.sim.provider_sink import DEFAULT_ACCOUNT_SID, ProviderSink
from gateways.sim.smtp_sink import SmtpSink
from tests.zmq_util import free_tcp_port, wait_until

TOKEN = "voice-test-token"
PHONE = "+8613800138001"
KEY = "robot-key-0001"


def note(**kw: object) -> Notification:
    base: dict = {
        "alert_id": "alert-8801",
        "idempotency_key": "alert-8801/voice/+8613800138001",
        "severity": "critical",
        "title": "账户 8801 风险度 93% risk degree",
        "text": "账户 8801 风险度 0.93 > 0.80",
        "recipient": PHONE,
        "fields": {"risk_degree": 0.93, "equity": 1_250_000.0},
    }
    base.update(kw)
    return Notification(**base)


class Callbacks:
    """A real HTTP server in the place of the operator endpoint: records what Twilio posts."""

    def __init__(self) -> None:
        self.got: queue.Queue = queue.Queue()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                outer.got.put((self.path, dict(self.headers), dict(parse_qsl(body))))
                answer = b"<Response><Say language='en-US'>Acknowledged</Say><Hangup/></Response>"
                self.send_response(200)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def take(self, n: int) -> list[tuple[str, dict, dict]]:
        return [self.got.get(timeout=5) for _ in range(n)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sink() -> Iterator[ProviderSink]:
    with ProviderSink(
        twilio_auth_token=TOKEN, wecom_keys=[KEY], callback_delay=0.01, timeout_delay=0.6
    ) as s:
        yield s


@pytest.fixture
def callbacks() -> Iterator[Callbacks]:
    c = Callbacks()
    yield c
    c.close()


def voice(url: str, callback_base: str | None = None, **kw: object):
    cfg = {
        "type": "twilio_voice",
        "name": "duty-voice",
        "base_url": url,
        "account_sid": DEFAULT_ACCOUNT_SID,
        "auth_token": TOKEN,
        "from": "+15005550006",
        "timeout": 0.3,
        "callback_base": callback_base,
    }
    return build_channel({**cfg, **kw})


def test_twiml_reads_alert_in_chinese_and_english_and_gathers_one_digit() -> None:
    xml = twiml_for(note(), "http://127.0.0.1:1/twilio/gather/alert-8801?key=k")
    assert '<Gather action="http://127.0.0.1:1/twilio/gather/alert-8801?key=k"' in xml
    assert 'numDigits="1"' in xml and 'method="POST"' in xml
    assert (
        '<Say language="zh-CN">风控告警，严重。账户 8801 风险度 93% risk degree。确认请按 1。</Say>'
        in xml
    )
    assert 'language="en-US">Risk alert, severity critical.' in xml and "Press 1" in xml


def test_call_plays_twiml_and_keypress_reaches_gather_signed(sink, callbacks) -> None:
    sink.set_callee(PHONE, press="1")
    result = voice(sink.url, callbacks.url).send(note())
    assert result.ok and result.status == 201 and result.provider_id.startswith("CA")
    # initiated, ringing, answered (status), the gather action, completed (status)
    posts = callbacks.take(5)
    validator = RequestValidator(TOKEN)
    for path, headers, params in posts:
        assert validator.validate(callbacks.url + path, params, headers["X-Twilio-Signature"])
        assert params["CallSid"] == result.provider_id and params["To"] == PHONE
    gather = [p for p in posts if p[0].startswith("/twilio/gather/")]
    assert len(gather) == 1 and gather[0][2]["Digits"] == "1"
    assert gather[0][0] == "/twilio/gather/alert-8801?key=alert-8801%2Fvoice%2F%2B8613800138001"
    statuses = [p[2]["CallStatus"] for p in posts if p[0].startswith("/twilio/status")]
    assert statuses == ["initiated", "ringing", "in-progress", "completed"]
    [call] = sink.messages("twilio_voice")
    assert call["digits"] == "1" and call["gather_http_status"] == 200
    assert [s["language"] for s in call["said"]] == ["zh-CN", "en-US", "en-US"]
    assert call["said"][2]["text"] == "Acknowledged"  # the TwiML the gather answered
    assert call["idempotency_key"] == note().idempotency_key


def test_unanswered_call_reports_no_answer_and_reads_nothing(sink, callbacks) -> None:
    sink.set_callee(PHONE, answer=False)
    assert voice(sink.url, callbacks.url).send(note()).ok
    posts = callbacks.take(3)
    assert [p[2]["CallStatus"] for p in posts] == ["initiated", "ringing", "no-answer"]
    assert sink.messages("twilio_voice")[0]["said"] == []


def test_a_repeated_voice_post_is_a_second_call_and_errors_are_judged(sink) -> None:
    channel = voice(sink.url)
    first, again = channel.send(note()), channel.send(note())  # Twilio calls twice, so does it
    assert first.provider_id != again.provider_id and len(sink.messages("twilio_voice")) == 2
    assert sink.stats()["twilio_voice_repeated_token"] == 1
    bad = channel.send(note(recipient="13800138000", idempotency_key="other"))
    assert (bad.ok, bad.retry, bad.status, bad.code) == (False, False, 400, 21217)
    sink.fail_next(1, "5xx", provider="twilio_voice")
    sink.fail_next(1, "timeout", provider="twilio_voice")
    five, slow = channel.send(note(idempotency_key="k3")), channel.send(note(idempotency_key="k4"))
    assert (five.retry, five.status) == (True, 503) and slow.retry and "timeout" in slow.error
    wrong = voice(sink.url, auth_token="not-it").send(note(idempotency_key="k5"))
    assert (wrong.ok, wrong.retry, wrong.code) == (False, False, 20003)
    assert "not-it" not in (wrong.error or "")


def test_sms_status_callback_goes_to_the_operator_endpoint_with_its_key(sink, callbacks) -> None:
    cfg = {
        "type": "twilio_sms",
        "name": "sms",
        "base_url": sink.url,
        "account_sid": DEFAULT_ACCOUNT_SID,
        "auth_token": TOKEN,
        "from": "+15005550006",
        "callback_base": callbacks.url,
    }
    assert build_channel(cfg).send(note()).ok
    posts = callbacks.take(2)
    assert [p[2]["MessageStatus"] for p in posts] == ["sent", "delivered"]
    assert posts[0][0] == "/twilio/status?key=alert-8801%2Fvoice%2F%2B8613800138001"


def test_coalesced_wecom_message_names_the_notifications_it_carries(sink) -> None:
    channel = build_channel({"type": "wecom", "name": "w", "base_url": sink.url, "key": KEY})
    combined = note(recipient="", mentions=("13800000001", "13800000002"), member_keys=("k1", "k2"))
    assert channel.send(combined).ok
    [msg] = sink.messages("wecom")
    assert msg["notification_keys"] == ["k1", "k2"]
    assert msg["mentioned_mobile_list"] == ["13800000001", "13800000002"]


# ---- e-mail ----------------------------------------------------------------------------------


def mail(url: str, **kw: object):
    cfg = {"type": "email", "name": "mail", "base_url": url, "from": "risk@fengkong.local"}
    cfg.update({"username": "fk", "password": "mail-secret-1", "timeout": 0.3})
    return build_channel({**cfg, **kw})


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    with SmtpSink(username="fk", password="mail-secret-1", timeout_delay=0.6) as s:
        yield s


def test_email_delivers_html_with_figures_and_reply_link(smtp) -> None:
    link = "http://127.0.0.1:9/ack/alert-8801?by=zhang&exp=1&sig=ab"
    n = note(recipient="zhang@desk.local", ack_url=link)
    result = mail(smtp.url).send(n)
    assert result.ok and result.status == 250
    [msg] = smtp.messages()
    assert msg["recipient"] == "zhang@desk.local" and msg["subject"].startswith(
        "[CRITICAL] 账户 8801"
    )
    assert msg["message_id"] == f"<{n.idempotency_key}@fengkong.local>"
    assert msg["idempotency_key"] == n.idempotency_key
    assert "<th align='left'>equity</th><td align='right'>1.25e+06</td>" in msg["html"]
    assert "ack/alert-8801?by=zhang&amp;exp=1&amp;sig=ab" in msg["html"]
    assert link in msg["body"]


def test_email_errors_retry_on_4xx_and_timeouts_not_on_5xx(smtp) -> None:
    channel = mail(smtp.url)
    n = note(recipient="zhang@desk.local")
    smtp.fail_next(1, "4xx")
    smtp.fail_next(1, "5xx")
    smtp.fail_next(1, "timeout")
    busy, refused, slow = channel.send(n), channel.send(n), channel.send(n)
    assert (busy.ok, busy.retry, busy.status) == (False, True, 451)
    assert (refused.ok, refused.retry, refused.status) == (False, False, 554)
    assert (slow.ok, slow.retry) == (False, True)
    smtp.rejected_recipients.add("gone@desk.local")
    unknown = channel.send(note(recipient="gone@desk.local"))
    assert (unknown.retry, unknown.status) == (False, 550)
    wrong = mail(smtp.url, password="wrong-pass").send(n)
    assert (wrong.ok, wrong.retry, wrong.status) == (False, False, 535)
    assert "wrong-pass" not in (wrong.error or "")
    assert smtp.messages() == []


def test_email_refused_connection_is_retryable_and_secret_comes_from_env(monkeypatch) -> None:
    port = free_tcp_port()  # nothing listens there
    down = mail(f"smtp://127.0.0.1:{port}").send(note(recipient="a@b.c"))
    assert not down.ok and down.retry
    with pytest.raises(ValueError, match="local sink"):
        build_channel(
            {
                "type": "email",
                "name": "m",
                "base_url": "smtp://mail.example.com:587",
                "from": "a@b.c",
                "username": "u",
                "password": "p",
            }
        )
    monkeypatch.setenv("FK_TEST_SMTP_PASSWORD", "from-env")
    channel = build_channel(
        {
            "type": "email",
            "name": "m",
            "base_url": "smtp://mail.example.com:587",
            "from": "a@b.c",
            "username": "u",
            "password_env": "FK_TEST_SMTP_PASSWORD",
        }
    )
    assert "from-env" not in repr(channel)


def test_a_client_gone_in_the_middle_of_data_leaves_no_message() -> None:
    """A server takes no message whose DATA was cut off (RFC 5321 §4.1.1.4): a Notifier killed
    mid-DATA must not leave a headless half message in the sink (it did, keyed "")."""
    import socket

    with SmtpSink() as s:
        with socket.create_connection((s.host, s.port), timeout=5) as conn:
            f = conn.makefile("rwb")

            def say(line: str) -> bytes:
                f.write(line.encode() + b"\r\n")
                f.flush()
                return f.readline()

            f.readline()  # 220
            say("EHLO probe")
            while not f.readline().startswith(b"250 "):  # the rest of the EHLO reply
                pass
            assert say("MAIL FROM:<risk@fengkong.local>").startswith(b"250")
            assert say("RCPT TO:<zhang@desk.local>").startswith(b"250")
            assert say("DATA").startswith(b"354")
            f.write(b"Subject: half\r\n\r\nthe first line of a page")
            f.flush()
            f.close()  # the socket closes only once its file does too
        assert wait_until(lambda: s.stats().get("cut_off") == 1, 5)
        assert s.messages() == []
