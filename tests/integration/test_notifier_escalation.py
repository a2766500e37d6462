"""Escalation and acknowledgement on the real local Ray: WeCom at once, SMS and a voice call if
nobody acknowledges, the next level after that; an ack by voice keypress, HTTP, reply link or CLI
stops it. Providers are the local HTTP and SMTP sinks; callbacks come back over real HTTP to the
console on Ray Serve (the Notifier serves no HTTP since issue 16)."""

from __future__ import annotations

import hashlib
import json
import re
import time

import pytest
import ray
from twilio.request_validator import RequestValidator

from app import cli
from tests.console_util import api_token
from tests.integration.notify_world import (
    DESK,
    HEAD,
    TWILIO_TOKEN,
    alert,
    start_world,
)
from tests.zmq_util import wait_until

LEVEL2_AT = 2.5
NOTIFIER = {
    "base_delay_s": 0.05,
    "max_delay_s": 0.2,
    "max_attempts": 4,
    "rosters": [{"name": "desk", "members": [DESK]}, {"name": "head", "members": [HEAD]}],
    "chains": [
        {
            "name": "fast",
            "level_after_s": LEVEL2_AT,
            "levels": [
                {
                    "roster": "desk",
                    "steps": [
                        {"channel": "wecom"},
                        {"channel": "sms", "after_s": 0.5},
                        {"channel": "voice", "after_s": 1.0},
                    ],
                },
                {"roster": "head", "steps": [{"channel": "wecom"}, {"channel": "sms"}]},
            ],
        },
        {
            "name": "slow",
            "level_after_s": 30.0,
            "levels": [
                {
                    "roster": "desk",
                    "steps": [
                        {"channel": "wecom"},
                        {"channel": "email"},
                        {"channel": "sms", "after_s": 5.0},
                    ],
                },
                {"roster": "head", "steps": [{"channel": "sms"}]},
            ],
        },
    ],
    "routes": [{"chain": "fast", "keys": ["FAST*"]}, {"chain": "slow"}],
}


@pytest.fixture(scope="module")
def world(ray_local, tmp_path_factory):
    """One Notifier, journal and console for the module (a world costs seconds to start): each
    test pages its own alert (FAST-1, FAST-2, SLOW-1…) and reads back only that alert's records,
    pages and messages, so none sees another's. The two FAST tests, whose drains wait out their
    chains, run before the SLOW ones (file order), and every SLOW alert but the last test's is
    acknowledged within its test, so no chain is left running into a later drain."""
    w = start_world(tmp_path_factory.mktemp("escalation"), NOTIFIER)
    yield w
    w.stop()


def world_store(world) -> str:
    return str(world.journal.parent / "console.sqlite")


def page_of(world, alert_id: str) -> dict:
    return next(p for p in ray.get(world.notifier.alerts.remote()) if p["page_id"] == alert_id)


def test_unacknowledged_alert_escalates_step_by_step_to_the_next_level(world) -> None:
    world.sink.set_callee(DESK["phone"], press=None)  # picks up, listens, presses nothing
    a = alert("FAST-1")
    ray.get(world.notifier.notify.remote([a]))
    assert wait_until(lambda: len(world.records("escalation.step", a.alert_id)) == 5, 15)
    assert ray.get(world.notifier.drain.remote(60)), ray.get(world.notifier.stats.remote())

    steps = world.records("escalation.step", a.alert_id)
    assert [(s["step"], s["level"], s["key"]) for s in steps] == [
        (0, 0, "wecom"),
        (1, 0, "sms"),
        (2, 0, "voice"),
        (3, 1, "wecom"),
        (4, 1, "sms"),
    ]
    mine = [m for m in world.sink.messages() if "FAST-1" in m["body"]]
    order = [(m["provider"], m["recipient"]) for m in sorted(mine, key=lambda m: m["received_at"])]
    assert order[:3] == [
        ("wecom", "notify-test-robot"),
        ("twilio_sms", DESK["phone"]),
        ("twilio_voice", DESK["phone"]),
    ]
    assert sorted(order[3:]) == [("twilio_sms", HEAD["phone"]), ("wecom", "notify-test-robot")]
    wecom = [m for m in mine if m["provider"] == "wecom"]
    assert [m["mentioned_mobile_list"] for m in wecom] == [["13800000001"], ["13800000002"]]
    call = next(m for m in mine if m["provider"] == "twilio_voice")
    assert call["digits"] is None and "确认请按 1" in call["body"] and "Press 1" in call["body"]

    keys = [k for s in steps for k in s["keys"]]
    delivered = world.records("notification.delivered")
    assert sorted(r["ref"] for r in delivered if r["ref"] in keys) == sorted(keys)
    assert page_of(world, a.alert_id)["state"] == "open"

    def confirmed() -> bool:  # Twilio's status callbacks came back through the endpoint
        got = {(r["key"], r["status"]) for r in world.records("notification.status")}
        return {("sms", "delivered"), ("voice", "completed")} <= got

    assert wait_until(confirmed, 5)


def test_voice_keypress_acknowledges_and_the_next_level_never_fires(world) -> None:
    world.sink.set_callee(DESK["phone"], press="1")
    a = alert("FAST-2")
    ray.get(world.notifier.notify.remote([a]))
    assert wait_until(lambda: world.records("alert.acked", a.alert_id), 10)
    [ack] = world.records("alert.acked", a.alert_id)
    assert (ack["via"], ack["by"]) == ("voice", DESK["phone"])
    page = page_of(world, a.alert_id)
    time.sleep(max(0.0, page["started"] + LEVEL2_AT + 0.5 - time.time()))  # past level 2's time
    assert ray.get(world.notifier.drain.remote(60)), ray.get(world.notifier.stats.remote())
    page = page_of(world, a.alert_id)
    assert page["state"] == "acked" and page["steps_fired"] == [0, 1, 2]
    assert not any(
        m["recipient"] == HEAD["phone"] and "FAST-2" in m["body"] for m in world.sink.messages()
    )
    call = next(m for m in world.sink.messages("twilio_voice") if "FAST-2" in m["body"])
    assert call["digits"] == "1" and call["gather_http_status"] == 200
    assert "已确认，谢谢。" in call["body"]


def test_http_ack_stops_escalation_and_is_idempotent(world) -> None:
    a = alert("SLOW-1")
    ray.get(world.notifier.notify.remote([a]))
    assert wait_until(lambda: len(ray.get(world.notifier.outcomes_for.remote(a.alert_id))) == 2, 10)
    # The console's API (was POST /ack on the Notifier's endpoint): the person is the token's.
    answer = world.http.post(
        f"{world.url}/api/ack/{a.alert_id}", json={}, headers=world.bearer, timeout=5
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["state"], body["acked_by"], body["already"]) == ("acked", "zhang", False)
    again = world.http.post(f"{world.url}/api/ack/{a.alert_id}", headers=world.bearer, timeout=5)
    assert again.json()["already"] is True and again.json()["acked_by"] == "zhang"
    listed = world.http.get(
        f"{world.url}/api/alerts", params={"state": "acked"}, headers=world.bearer, timeout=5
    )
    assert a.alert_id in [p["page_id"] for p in listed.json()["alerts"]]

    [ack] = world.records("alert.acked", a.alert_id)
    steps = world.records("escalation.step", a.alert_id)
    assert all(s["seq"] < ack["seq"] for s in steps)  # nothing fired after the ack
    assert page_of(world, a.alert_id)["steps_fired"] == [0, 1]  # SMS (5 s) and level 2 stopped


def test_reply_link_in_the_email_acknowledges(world) -> None:
    a = alert("SLOW-2")
    ray.get(world.notifier.notify.remote([a]))
    assert wait_until(lambda: any("SLOW-2" in m["subject"] for m in world.smtp.messages()), 10)
    mail = next(m for m in world.smtp.messages() if "SLOW-2" in m["subject"])
    assert mail["recipient"] == DESK["email"]
    link = re.search(r"Acknowledge: (\S+)", mail["body"]).group(1)
    # The console's route; the link carries a random token, not who and a signature.
    assert link.startswith(f"{world.url}/ack/{a.alert_id}?t=")
    forged = world.http.get(link[:-4] + "0000", timeout=5)
    assert (forged.status_code, forged.json()["error"]) == (403, "BAD_TOKEN")
    answer = world.http.get(link, timeout=5)
    assert answer.status_code == 200 and "已确认" in answer.text
    [ack] = world.records("alert.acked", a.alert_id)
    assert (ack["via"], ack["by"]) == ("link", "zhang")


def test_the_journal_holds_no_working_reply_link(world) -> None:
    """Issue 13 item 7: the journal keeps the digest of a link's token, never the link; no
    reading of it (a record's fields, a page's text) opens the /ack route."""
    a = alert("SLOW-5")
    ray.get(world.notifier.notify.remote([a]))
    assert wait_until(lambda: any("SLOW-5" in m["subject"] for m in world.smtp.messages()), 10)
    mail = next(m for m in world.smtp.messages() if "SLOW-5" in m["subject"])
    token = re.search(r"Acknowledge: \S+\?t=(\S+)", mail["body"]).group(1)
    [held] = [r for r in world.records("notification.link", a.alert_id) if r["key"] == "zhang"]
    assert held["token_sha256"] == hashlib.sha256(token.encode()).hexdigest()
    store = world.store()
    try:
        everything = json.dumps(store.query(), ensure_ascii=False)
    finally:
        store.close()
    assert token not in everything and "?t=" not in everything
    for candidate in {held["token_sha256"], held["token_sha256"][:24]}:  # the digest is no key
        tried = world.http.get(f"{world.url}/ack/{a.alert_id}", params={"t": candidate}, timeout=5)
        assert (tried.status_code, tried.json()["error"]) == (403, "BAD_TOKEN")
    assert page_of(world, a.alert_id)["state"] == "open"
    assert world.http.get(mail_link(mail), timeout=5).status_code == 200  # the mail's own works


def mail_link(mail: dict) -> str:
    return re.search(r"Acknowledge: (\S+)", mail["body"]).group(1)


def test_cli_ack_and_unknown_alert(world, capsys) -> None:
    a = alert("SLOW-3")
    ray.get(world.notifier.notify.remote([a]))
    assert wait_until(
        lambda: any(p["page_id"] == a.alert_id for p in ray.get(world.notifier.alerts.remote())), 10
    )
    assert cli.main(["ack", a.alert_id, "--prefix", world.prefix, "--as", "li"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["acked_by"], shown["acked_via"], shown["already"]) == ("li", "cli", False)
    assert cli.main(["ack", "no-such-alert", "--prefix", world.prefix]) == 1
    assert json.loads(capsys.readouterr().out)["error"] == "UNKNOWN_ALERT"


def test_console_routes_refuse_bad_input_journal_it_and_keep_working(world) -> None:
    """The old operator endpoint's refusals, now the console's (deliberate changes: a missing
    or bad bearer is the console's UNAUTHORIZED / BAD_TOKEN, acks are POST /api/ack, and each
    refusal is a `console.*` journal record instead of a counter on the Notifier)."""
    url, http, bearer = world.url, world.http, world.bearer

    def error(resp) -> tuple[int, str]:
        return resp.status_code, resp.json()["error"]

    assert error(http.get(f"{url}/api/alerts", timeout=5)) == (401, "UNAUTHORIZED")
    assert error(
        http.post(f"{url}/api/ack/x", headers={"Authorization": "Bearer nope"}, timeout=5)
    ) == (401, "BAD_TOKEN")
    assert (
        error(
            http.get(f"{url}/api/alerts", headers={"Authorization": "Bearer t\u00f6k"}, timeout=5)
        )[0]
        == 401
    )  # a non-ASCII token is refused with a reason, never a 500
    assert error(http.post(f"{url}/api/ack/no-such", headers=bearer, timeout=5)) == (
        404,
        "UNKNOWN_ALERT",
    )
    bad_json = {**bearer, "Content-Type": "application/json"}
    assert error(http.post(f"{url}/api/ack/x", data=b"{not json", headers=bad_json, timeout=5)) == (
        400,
        "MALFORMED",
    )
    assert error(http.get(f"{url}/api/alerts?state=weird", headers=bearer, timeout=5)) == (
        400,
        "MALFORMED",
    )
    assert error(http.get(f"{url}/ack/x", timeout=5)) == (400, "MALFORMED")
    assert error(http.get(f"{url}/ack/x?t=%C3%A9%C3%A9", timeout=5)) == (403, "BAD_TOKEN")
    assert error(
        http.post(f"{url}/twilio/status?key=k", data={"MessageStatus": "delivered"}, timeout=5)
    ) == (403, "BAD_SIGNATURE")

    signer = RequestValidator(TWILIO_TOKEN)

    def twilio(path: str, params: dict) -> object:
        sig = signer.compute_signature(url + path, params)
        return http.post(url + path, data=params, headers={"X-Twilio-Signature": sig}, timeout=5)

    assert error(twilio("/twilio/status?key=nobody", {"MessageStatus": "delivered"})) == (
        404,
        "UNKNOWN_NOTIFICATION",
    )
    assert error(twilio("/twilio/gather/no-such?key=k", {"Digits": "1", "To": "+1"})) == (
        404,
        "UNKNOWN_ALERT",
    )
    not_one = twilio("/twilio/gather/no-such?key=k", {"Digits": "2", "To": "+1"})
    assert not_one.status_code == 200 and "Not acknowledged" in not_one.text
    assert error(http.get(f"{url}/nowhere", timeout=5)) == (404, "NOT_FOUND")
    viewer = api_token(world_store(world), "zhao")  # a viewer may list, not acknowledge
    denied = http.post(f"{url}/api/ack/x", headers={"Authorization": f"Bearer {viewer}"})
    assert error(denied) == (403, "FORBIDDEN_ROLE")

    def refused() -> dict[str, int]:
        got: dict[str, int] = {}
        for r in world.records("console.*"):
            if r["outcome"] != "ok":
                code = r.get("code") or r["outcome"]
                got[code] = got.get(code, 0) + 1
        return got

    want = {"UNAUTHORIZED": 1, "BAD_TOKEN": 3, "MALFORMED": 3, "BAD_SIGNATURE": 1,
            "FORBIDDEN_ROLE": 1}  # fmt: skip
    assert wait_until(lambda: all(refused().get(k, 0) >= n for k, n in want.items()), 10), refused()
    a = alert("SLOW-4")  # and the next alert is handled as usual
    ray.get(world.notifier.notify.remote([a]))
    assert wait_until(lambda: len(ray.get(world.notifier.outcomes_for.remote(a.alert_id))) == 2, 10)
    assert all(
        o["outcome"] == "delivered" for o in ray.get(world.notifier.outcomes_for.remote(a.alert_id))
    )
