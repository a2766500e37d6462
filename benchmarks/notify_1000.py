"""Issue 7's figure: 1,000 alerts fanned out to WeCom, SMS and e-mail against the local provider
servers while 10% of provider calls fail (HTTP 503 / SMTP 451, or a timeout): all delivered,
none twice, how long until the last delivery, p99 from alert to its first delivery.

Alerts arrive the way the correlator sends them, 50 per call every 50 ms, and are not grouped
into digests (group_over is lifted), so each one is its own page on three channels. The WeCom
robot keeps its real limit of 20 posts a minute: the Notifier coalesces under that limit, so the
WeCom channel's last delivery shows what the limit costs in a storm.
"""

from __future__ import annotations

import collections
import tempfile
import time
from pathlib import Path
from typing import Any

import ray

from actors.audit_log import AuditLog, AuditLogSettings
from actors.notifier import Notifier
from benchmarks.common import ensure_ray
from gateways.sim.provider_sink import DEFAULT_ACCOUNT_SID, ProviderSink
from gateways.sim.smtp_sink import SmtpSink
from infra import config
from infra.audit import AuditStore
from rules.model import Alert, stable_id

NAME = "notify-1000"
TARGETS = {
    "alert_to_delivery_p99_ms": ("<", 2000.0),
    "duplicates": ("<", 1),
    "lost": ("<", 1),
}  # issue 17
DESCRIPTION = "1,000 alerts × (WeCom, SMS, e-mail), 10% provider failures (5xx/timeouts)"
BATCH, EVERY_S = 50, 0.05
TOKEN, KEY = "bench-twilio-token", "bench-robot-key"


def _alerts(n: int) -> list[Alert]:
    now = time.time()
    return [
        Alert(
            alert_id=stable_id("bench", i, now),
            rule_id="account.risk_degree.warn",
            key=f"B{i:05d}",
            severity="critical",
            title=f"账户 B{i:05d} 风险度 93% 超过 80%",
            value=0.93,
            threshold=0.8,
            created_ts=now,
            ingress_ts=now,
            attributes={"equity": 1e6, "margin": 9.3e5, "risk_degree": 0.93},
        )
        for i in range(n)
    ]


def _channels(sink: ProviderSink, smtp: SmtpSink) -> list[dict[str, Any]]:
    return [
        {
            "name": "wecom",
            "type": "wecom",
            "base_url": sink.url,
            "key": KEY,
            "markdown": True,
            "timeout": 0.5,
        },
        {
            "name": "sms",
            "type": "twilio_sms",
            "base_url": sink.url,
            "account_sid": DEFAULT_ACCOUNT_SID,
            "auth_token": TOKEN,
            "from": "+15005550006",
            "timeout": 0.5,
        },
        {
            "name": "email",
            "type": "email",
            "base_url": smtp.url,
            "from": "risk@fengkong.local",
            "timeout": 0.5,
        },
    ]


SETTINGS = {
    "group_over": 1_000_000,
    "group_wait_s": 0.05,
    "max_attempts": 10,
    "base_delay_s": 0.1,
    "max_delay_s": 1.0,
    "workers": 8,
    "rosters": [
        {
            "name": "desk",
            "members": [{"name": "zhang", "phone": "+8613800000001", "email": "zhang@desk.local"}],
        }
    ],
    "chains": [
        {
            "name": "storm",
            "levels": [
                {
                    "roster": "desk",
                    "steps": [{"channel": "wecom"}, {"channel": "sms"}, {"channel": "email"}],
                }
            ],
        }
    ],
    "routes": [{"chain": "storm"}],
}


def run(quick: bool = False) -> dict[str, Any]:
    n = 200 if quick else 1000
    ensure_ray()
    sink = ProviderSink(
        twilio_auth_token=TOKEN,
        wecom_keys=[KEY],
        failure_rate=0.1,
        failure_kind="mixed",
        timeout_delay=1.0,
        callback_delay=0.05,
        seed=7,
    )
    smtp = SmtpSink(failure_rate=0.1, failure_kind="mixed", timeout_delay=1.0, seed=7)
    sink.start()
    smtp.start()
    tmp = Path(tempfile.mkdtemp(prefix="fk-notify-bench-"))
    settings = config.from_dict({"notifier": SETTINGS}, source="<bench>").notifier
    audit = AuditLog.remote(AuditLogSettings(str(tmp / "journal.sqlite"), 50))
    notifier = Notifier.remote(_channels(sink, smtp), audit, settings)
    try:
        ray.get(notifier.__ray_ready__.remote())
        alerts = _alerts(n)
        t0 = time.time()
        for i in range(0, n, BATCH):
            chunk = alerts[i : i + BATCH]
            now = time.time()
            chunk = [
                a.__class__(**{**a.to_record(), "created_ts": now, "ingress_ts": now})
                for a in chunk
            ]
            ray.get(notifier.notify.remote(chunk))
            time.sleep(max(0.0, t0 + (i // BATCH + 1) * EVERY_S - time.time()))
        settled = ray.get(notifier.drain.remote(300))
        stats = ray.get(notifier.stats.remote())
        ray.get(audit.flush.remote())
        return _figures(n, t0, settled, stats, sink, smtp, AuditStore(tmp / "journal.sqlite"))
    finally:
        for actor in (notifier, audit):
            ray.kill(actor, no_restart=True)
        sink.stop()
        smtp.stop()


def _figures(n: int, t0: float, settled: bool, stats: dict, sink, smtp, store) -> dict[str, Any]:  # noqa: ANN001
    messages = sink.messages() + smtp.messages()
    seen: collections.Counter = collections.Counter()
    last: dict[str, float] = {}
    for m in messages:
        for key in m.get("notification_keys") or [m["idempotency_key"]]:
            seen[key] += 1
        last[m["provider"]] = max(last.get(m["provider"], 0.0), m["received_at"] - t0)
    queued = {r["ref"] for r in store.query(kind="notification.queued")}
    faults = {
        k: v
        for k, v in {**sink.stats(), **{f"smtp_{k}": v for k, v in smtp.stats().items()}}.items()
        if "fault" in k
    }
    requests = sink.stats().get("wecom_requests", 0) + sink.stats().get("twilio_sms_requests", 0)
    requests += smtp.stats().get("delivered", 0) + sum(
        v for k, v in smtp.stats().items() if k.startswith("faults_")
    )
    return {
        "alerts": n,
        "deliveries": len(queued & set(seen)),
        "duplicates": sum(c - 1 for c in seen.values() if c > 1),
        "lost": len(queued - set(seen)),
        "last_delivery_s": round(max(last.values()), 2),
        "alert_to_delivery_p99_ms": round(stats["alert_to_first_delivery_ms"]["p99"], 1),
        "alert_to_delivery_p50_ms": round(stats["alert_to_first_delivery_ms"]["p50"], 1),
        "last_delivery_s_by_channel": {k: round(v, 2) for k, v in sorted(last.items())},
        "wecom_posts": len(sink.messages("wecom")),
        "wecom_rate_limited": sink.stats().get("wecom_rate_limited", 0),
        "provider_requests": requests,
        "provider_faults": faults,
        "retried_notifications": sum(
            v for k, v in stats["per_channel"].items() if k.endswith(".retried")
        ),
        "failed": stats.get("failed", 0),
        "drained": settled,
    }
