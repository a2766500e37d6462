"""A Notifier on the real local Ray with its journal and real local provider servers.

Twilio (SMS, voice) and WeCom speak HTTP to the provider sink, e-mail speaks SMTP to the SMTP
sink; the console (the real Serve application) is what the sink calls back (status callbacks,
the voice keypress) and the tests call (reply links, acks and the alert list with a person's
API token), as the Notifier names its URL in every link and callback.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
import requests

from actors.audit_log import AuditLog, AuditLogSettings
from actors.notifier import Notifier
from gateways.sim.provider_sink import DEFAULT_ACCOUNT_SID, ProviderSink
from gateways.sim.smtp_sink import SmtpSink
from infra import config
from infra.audit import AuditStore
from infra.config.notify import channel_from
from rules.model import Alert, stable_id
from tests.console_util import api_token, console_table, roster, wait_up

TWILIO_TOKEN = "notify-test-twilio-token"
WECOM_KEY = "notify-test-robot"
SMTP_USER, SMTP_PASSWORD = "fk", "notify-test-smtp"
FROM = "+15005550006"
DESK = {"name": "zhang", "phone": "+8613800000001", "email": "zhang@desk.local"}
DESK2 = {"name": "liu", "phone": "+8613800000003", "email": "liu@desk.local"}
HEAD = {"name": "wang", "phone": "+8613800000002", "email": "wang@head.local"}
PEOPLE = {"zhang": ("risk_officer", "zhang-password-1"), "zhao": ("viewer", "zhao-password-1")}


def channels(sink: ProviderSink, smtp: SmtpSink, **extra: dict[str, Any]) -> list[dict[str, Any]]:
    twilio = {"base_url": sink.url, "account_sid": DEFAULT_ACCOUNT_SID, "auth_token": TWILIO_TOKEN}
    chans = [
        {"name": "wecom", "type": "wecom", "base_url": sink.url, "key": WECOM_KEY, "timeout": 1.0},
        {"name": "sms", "type": "twilio_sms", "from": FROM, "timeout": 1.0, **twilio},
        {"name": "voice", "type": "twilio_voice", "from": FROM, "timeout": 1.0, **twilio},
        {
            "name": "email",
            "type": "email",
            "base_url": smtp.url,
            "from": "risk@fengkong.local",
            "username": SMTP_USER,
            "password": SMTP_PASSWORD,
            "timeout": 1.0,
        },
    ]
    for c in chans:
        c.update(extra.get(c["name"], {}))
    return chans


@dataclass
class World:
    sink: ProviderSink
    smtp: SmtpSink
    audit: Any
    notifier: Any
    journal: Path
    prefix: str
    url: str  # the console's
    http: requests.Session
    token: str  # zhang's API token (a risk officer): the bearer of the /api routes
    console: bool = True

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def store(self) -> AuditStore:
        ray.get(self.audit.flush.remote())
        return AuditStore(self.journal)

    def records(self, kind: str, ref: str | None = None) -> list[dict[str, Any]]:
        return self.store().query(kind=kind, ref=ref)

    def messages(self) -> list[dict[str, Any]]:
        return self.sink.messages() + self.smtp.messages()

    def stop(self) -> None:
        if self.console:
            from app.console.serve import stop_console

            stop_console()
        for actor in (self.notifier, self.audit):
            try:
                ray.kill(actor, no_restart=True)
            except Exception:
                pass
        self.sink.stop()
        self.smtp.stop()
        self.http.close()


def start_world(
    tmp: Path,
    notifier: dict[str, Any],
    *,
    sink: dict[str, Any] | None = None,
    channel_extra: dict[str, dict[str, Any]] | None = None,
    console: bool = True,
) -> World:
    psink = ProviderSink(
        twilio_auth_token=TWILIO_TOKEN, wecom_keys=[WECOM_KEY], callback_delay=0.01, **(sink or {})
    )
    psink.start()
    smtp = SmtpSink(username=SMTP_USER, password=SMTP_PASSWORD)
    smtp.start()
    chans = channels(psink, smtp, **(channel_extra or {}))
    cfg = config.from_dict(
        {"notifier": notifier, "console": console_table(tmp, PEOPLE), "people": roster(PEOPLE),
         "accounts": {"shards": 1}, "books": {"commodities": []}},
        source="<test>",
    )  # fmt: skip
    cfg = dataclasses.replace(cfg, channels=[channel_from(c, "channels") for c in chans])
    prefix = f"n{uuid.uuid4().hex[:6]}."
    journal = tmp / "journal.sqlite"
    audit = AuditLog.options(name=f"{prefix}AuditLog").remote(AuditLogSettings(str(journal), 20))
    url = cfg.console.url if console else ""
    actor = Notifier.options(name=f"{prefix}Notifier").remote(chans, audit, cfg.notifier, url)
    ray.get(actor.__ray_ready__.remote())
    if console:
        from app.console.serve import deploy_console

        deploy_console(cfg, prefix, commodities=[])
        wait_up(url)
    http = requests.Session()
    http.trust_env = False  # a proxy from the environment must not see loopback calls
    token = api_token(cfg.console.store_path, "zhang")
    return World(psink, smtp, audit, actor, journal, prefix, url, http, token, console)


def alert(key: str, rule: str = "account.risk_degree.warn", severity: str = "critical") -> Alert:
    now = time.time()
    return Alert(
        alert_id=stable_id(rule, key, now),
        rule_id=rule,
        key=key,
        severity=severity,
        title=f"账户 {key} 风险度 93% 超过 80% (risk degree)",
        value=0.93,
        threshold=0.8,
        created_ts=now,
        ingress_ts=now,
        attributes={"equity": 1_000_000.0, "margin": 930_000.0, "risk_degree": 0.93},
    )
