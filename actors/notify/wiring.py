"""The Notifier's edges, built once from config: channel objects and the machine's lane specs,
the reply-link maker, the metrics the machine's effects name, and the translation between the
machine's messages/results and the channels' Notification/DeliveryResult.

The Notifier serves no HTTP: acks, reply links and Twilio's callbacks go to the console
(app/console, on Ray Serve), whose public URL (`[console] public_url`) the links and the
callbacks name."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

from gateways.channels import build_channel
from gateways.channels.base import Channel, DeliveryResult, Notification
from infra import metrics
from infra.config import NotifierConfig
from infra.stats import LatencyRing
from rules.notify.inputs import ACCEPTED, FINAL, RETRYABLE, Result
from rules.notify.links import link_record, link_url
from rules.notify.model import ACTOR, DEFAULT_RATE, LaneSpec, Message, Settings

log = logging.getLogger(__name__)


def machine_settings(s: NotifierConfig, console_url: str = "") -> Settings:
    """The machine's settings; a fresh jitter seed and session per process, so try ids of this
    run never match a previous run's in the journal. `console_url`: pages link to the alert's
    account (or the inbox) there."""
    return Settings(
        max_attempts=s.max_attempts,
        base_delay_s=s.base_delay_s,
        max_delay_s=s.max_delay_s,
        breaker_failures=s.breaker_failures,
        breaker_cooldown_s=s.breaker_cooldown_s,
        queue_limit=s.queue_limit,
        coalesce_max=s.coalesce_max,
        group_over=s.group_over,
        seed=secrets.randbits(32),
        session=secrets.token_hex(4) + "-",
        console_url=console_url.rstrip("/"),
    )


def build_channels(
    channels: list[dict[str, Any]], s: NotifierConfig, callback_base: str | None
) -> tuple[dict[str, Channel], list[LaneSpec]]:
    """One channel and lane per block. Besides the provider's own keys a block may carry: `to`
    (recipients when no roster applies), `failover` (channel names to try while this one is
    down), `rate_limit` + `rate_window_s` (WeCom defaults to 20 per 60 s; 0 turns it off),
    `max_in_flight` (default: workers) and `linger_s` (wait for a fuller batch under the limit)."""
    built: dict[str, Channel] = {}
    specs: list[LaneSpec] = []
    for raw in channels:
        cfg = dict(raw)
        if callback_base and cfg.get("type") in ("twilio_sms", "twilio_voice"):
            cfg.setdefault("callback_base", callback_base)
        channel = build_channel(cfg)
        rate = DEFAULT_RATE.get(channel.kind)
        if "rate_limit" in cfg:
            limit = cfg["rate_limit"]
            rate = (int(limit), float(cfg.get("rate_window_s", 60.0))) if limit else None
        built[channel.name] = channel
        specs.append(
            LaneSpec(
                name=channel.name,
                kind=channel.kind,
                recipients=tuple(cfg.get("to", [""])) or ("",),
                failover=tuple(cfg.get("failover", [])),
                rate=rate,
                max_in_flight=int(cfg.get("max_in_flight", s.workers)),
                linger_s=float(cfg.get("linger_s", 0.5)),
                markdown=bool(getattr(channel, "markdown", False)),
            )
        )
    return built, specs


def notification(m: Message, link: Callable[[str, str], str], channel: Any = None) -> Notification:
    """The channel's Notification; a reply link only for a channel that shows one
    (`reply_links`, e.g. e-mail): each link is a journal record, so none is made in vain."""
    wants_link = bool(m.ack_by) and bool(getattr(channel, "reply_links", False))
    return Notification(
        alert_id=m.alert_id,
        idempotency_key=m.idempotency_key,
        severity=m.severity,
        title=m.title,
        text=m.text,
        markdown=m.markdown,
        recipient=m.recipient,
        fields=dict(m.fields),
        mentions=m.mentions,
        ack_url=link(m.alert_id, m.ack_by) if wants_link else "",
        member_keys=m.member_keys,
    )


def result(try_id: str, r: DeliveryResult) -> Result:
    outcome = ACCEPTED if r.ok else (RETRYABLE if r.retry else FINAL)
    return Result(
        try_id,
        outcome,
        status=r.status,
        code=r.code,
        error=r.error,
        provider_id=r.provider_id,
        latency_ms=r.latency_ms,
    )


def signer(
    console_url: str, hold: Callable[[list[dict[str, Any]]], None] | None, ttl_s: float
) -> Callable[[str, str], str]:
    """The reply-link maker: a fresh random token per link, whose digest (never the token) is
    handed to `hold` (the journal, `received`) before the link is returned, so the console can
    verify it by the time the message arrives. No console URL or no journal: no links."""
    if not console_url or hold is None:
        return lambda page_id, by: ""

    def link(page_id: str, by: str) -> str:
        token = secrets.token_urlsafe(18)
        try:
            hold([link_record(page_id, by, token, time.time() + ttl_s)])
        except Exception:  # journal away: this message goes without a link, it still goes
            log.exception("reply link for %s not journaled; sent without one", page_id)
            return ""
        return link_url(console_url, page_id, token)

    return link


class NotifyMetrics:
    """The Prometheus figures the machine's effects name, and the first-delivery ring."""

    def __init__(self) -> None:
        self.first_delivery = LatencyRing()
        self.sent = metrics.counter(
            "notifications_total", "notification outcomes", ("actor", "channel", "outcome")
        )
        self.deliver = metrics.histogram(
            "alert_to_delivery_ms",
            "alert created to delivered",
            metrics.LATENCY_MS_BUCKETS + [10_000, 60_000],
            tag_keys=("actor", "channel"),
        )
        self.ack = metrics.histogram(
            "alert_to_ack_s",
            "alert created to acknowledged",
            [1, 5, 10, 30, 60, 180, 300, 600, 1800],
            tag_keys=("actor", "via"),
        )
        self.depth = metrics.gauge(
            "notify_queue_depth", "notifications queued per channel", ("actor", "channel")
        )
        self.spilled = metrics.counter(
            "notify_queue_spilled_total",
            "notifications kept in the journal only because a channel queue was full",
            ("actor", "channel"),
        )
        self.within = metrics.gauge(
            "notify_delivered_within_60s_ratio", "pages first delivered within 60 s of the alert"
        )
        self._depths: dict[str, int] = {}

    def record(self, figures: list[tuple[str, float, dict[str, str]]]) -> None:
        for name, value, tags in figures:
            t = {"actor": ACTOR, **tags}
            if name == "sent":
                self.sent.inc(tags=t)
            elif name == "deliver_ms":
                self.deliver.observe(value, tags=t)
            elif name == "first_delivery_ms":
                self.first_delivery.add([value] * int(tags.get("alerts", "1")))
            elif name == "within_60s":
                self.within.set(value, tags=t)
            elif name == "ack_s":
                self.ack.observe(value, tags=t)
            elif name == "spilled":
                self.spilled.inc(tags=t)

    def depths(self, depths: dict[str, int]) -> None:
        if depths != self._depths:  # a gauge costs ~1 ms
            self._depths = depths
            for name, depth in depths.items():
                self.depth.set(depth, tags={"actor": ACTOR, "channel": name})
