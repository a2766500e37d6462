"""Notifier actor: alerts to people, on every configured channel, with retry.

The pipeline per batch of alerts, in the order Alertmanager taught: group (many alerts of one
rule in one batch become one digest per channel, listing the accounts) → dedup (an idempotency key
per alert group × channel × recipient is sent once) → journal as queued (outbox) → fan out in
parallel with retry and backoff → journal every attempt and the outcome.
"""

from __future__ import annotations

import collections
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import ray

from actors.common import ACTOR_OPTIONS
from gateways.channels.base import Channel, DeliveryResult, Notification, build_channel
from gateways.channels.retry import deliver_with_retry
from infra import metrics
from infra.stats import LatencyRing
from rules.model import Alert, stable_id

DIGEST_LIST = 50  # accounts named in a digest; the rest are counted


def render(alerts: list[Alert]) -> tuple[str, str, str, dict[str, Any]]:
    """Title, plain text, markdown and figures for one alert or a digest of many."""
    first = alerts[0]
    if len(alerts) == 1:
        a = first
        figures = {
            k: a.attributes[k]
            for k in ("equity", "margin", "available", "risk_degree")
            if k in a.attributes
        }
        lines = [a.title] + [f"{k}: {v:,.2f}" for k, v in figures.items()]
        lines.append(f"alert {a.alert_id} · rule {a.rule_id} · {a.severity}")
        text = "\n".join(lines)
        md = f"**{a.title}**\n" + "\n".join(
            f'> {k}: <font color="warning">{v:,.2f}</font>' for k, v in figures.items()
        )
        md += f"\n> alert `{a.alert_id}` · {a.severity}"
        return a.title, text, md, figures
    keys = [a.key for a in alerts]
    shown = ", ".join(keys[:DIGEST_LIST]) + (
        f" … (+{len(keys) - DIGEST_LIST})" if len(keys) > DIGEST_LIST else ""
    )
    worst = max(alerts, key=lambda a: a.value)
    title = f"{len(alerts)} 个账户触发 {first.rule_id} ({len(alerts)} accounts, {first.severity})"
    text = f"{title}\nworst: {worst.key} {worst.value:.4g}\naccounts: {shown}"
    md = f'**{title}**\n> worst: {worst.key} <font color="warning">{worst.value:.4g}</font>\n> {shown}'
    return title, text, md, {"accounts": len(alerts), "worst_value": worst.value}


@ray.remote(**ACTOR_OPTIONS)
class Notifier:
    def __init__(
        self,
        channels: list[dict[str, Any]],
        audit: Any = None,
        max_attempts: int = 5,
        base_delay_s: float = 0.2,
        max_delay_s: float = 5.0,
        workers: int = 8,
        group_over: int = 5,
        group_wait_s: float = 0.5,
    ) -> None:
        self.channel_cfgs = channels
        self.channels: list[tuple[Channel, list[str]]] = [
            (build_channel(cfg), list(cfg.get("to", [""])) or [""]) for cfg in channels
        ]
        self.audit = audit
        self.retry = {
            "max_attempts": max_attempts,
            "base_delay": base_delay_s,
            "max_delay": max_delay_s,
        }
        self.group_over = group_over
        self.group_wait_s = group_wait_s
        self._waiting: dict[str, list[Alert]] = {}  # rule id -> alerts waiting to be grouped
        self._waiting_since: dict[str, float] = {}
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="notify")
        self.sent_keys: set[str] = set()
        self.outcomes: dict[str, dict[str, Any]] = {}
        self.counts: collections.Counter = collections.Counter()
        self.first_delivery = LatencyRing()
        self._first_done: set[str] = set()
        self._lock = threading.Lock()
        self._m_sent = metrics.counter(
            "notifications_total", "notification outcomes", tag_keys=("actor", "channel", "outcome")
        )
        self._m_deliver = metrics.histogram(
            "alert_to_delivery_ms",
            "alert created to delivered",
            metrics.LATENCY_MS_BUCKETS + [10_000, 60_000],
            tag_keys=("actor", "channel"),
        )

        threading.Thread(target=self._group_loop, daemon=True).start()

    def notify(self, alerts: list[Alert]) -> int:
        """Accept alerts; they wait `group_wait_s` per rule so one shock makes one digest."""
        now = time.time()
        with self._lock:
            for a in alerts:
                self._waiting.setdefault(a.rule_id, []).append(a)
                self._waiting_since.setdefault(a.rule_id, now)
            self.counts["alerts"] += len(alerts)
        return len(alerts)

    def _group_loop(self) -> None:
        while True:
            time.sleep(min(0.05, self.group_wait_s or 0.05))
            now = time.time()
            with self._lock:
                due = [r for r, t in self._waiting_since.items() if now - t >= self.group_wait_s]
                groups = {r: self._waiting.pop(r) for r in due}
                for r in due:
                    del self._waiting_since[r]
            if groups:
                self._dispatch(groups)

    def _dispatch(self, groups: dict[str, list[Alert]]) -> int:
        """Queue deliveries for grouped alerts; returns how many notifications were queued."""
        batches: list[list[Alert]] = []
        for items in groups.values():
            if len(items) > self.group_over:
                batches.append(items)
            else:
                batches.extend([a] for a in items)
        queued = 0
        records = []
        for batch in batches:
            group_id = (
                batch[0].alert_id
                if len(batch) == 1
                else stable_id("group", *sorted(a.alert_id for a in batch))
            )
            title, text, md, fields = render(batch)
            for channel, recipients in self.channels:
                for recipient in recipients:
                    key = stable_id(group_id, channel.name, recipient)
                    with self._lock:
                        if key in self.sent_keys:
                            self.counts["deduplicated"] += 1
                            continue
                        self.sent_keys.add(key)
                    note = Notification(
                        alert_id=group_id,
                        idempotency_key=key,
                        severity=batch[0].severity,
                        title=title,
                        text=text,
                        markdown=md,
                        recipient=recipient,
                        fields={
                            k: v for k, v in fields.items() if isinstance(v, (int, float, str))
                        },
                    )
                    alert_ids = [a.alert_id for a in batch]
                    records.append(
                        {
                            "kind": "notification.queued",
                            "actor": "Notifier",
                            "key": channel.name,
                            "ref": key,
                            "alert_ids": alert_ids,
                            "recipient": recipient,
                            "title": title,
                        }
                    )
                    created = min(a.created_ts for a in batch)
                    self.pool.submit(self._deliver, channel, note, alert_ids, created)
                    queued += 1
        with self._lock:
            self.counts["queued"] += queued
        self._journal(records)
        return queued

    def _journal(self, records: list[dict[str, Any]]) -> None:
        if self.audit is not None and records:
            self.audit.append.remote(records)

    def _deliver(
        self, channel: Channel, note: Notification, alert_ids: list[str], created: float
    ) -> None:
        attempts: list[dict[str, Any]] = []

        def on_attempt(n: int, result: DeliveryResult) -> None:
            rec = {
                "kind": "notification.attempt",
                "actor": "Notifier",
                "key": channel.name,
                "ref": note.idempotency_key,
                "attempt": n,
                "ok": result.ok,
                "retry": result.retry,
                "status": result.status,
                "code": result.code,
                "error": result.error,
                "provider_id": result.provider_id,
                "latency_ms": result.latency_ms,
            }
            attempts.append(rec)
            self._journal([rec])
            if not result.ok:
                self._m_sent.inc(
                    tags={
                        "actor": "Notifier",
                        "channel": channel.name,
                        "outcome": "retried" if result.retry else "failed",
                    }
                )

        try:
            result = deliver_with_retry(channel, note, on_attempt=on_attempt, **self.retry)
        except Exception as exc:  # a channel bug must not lose the outcome
            result = DeliveryResult(ok=False, retry=False, error=f"{type(exc).__name__}: {exc}")
        now = time.time()
        outcome = "delivered" if result.ok else "failed"
        with self._lock:
            self.counts[outcome] += 1
            self.counts["attempts"] += len(attempts)
            self.outcomes[note.idempotency_key] = {
                "channel": channel.name,
                "recipient": note.recipient,
                "alert_ids": alert_ids,
                "outcome": outcome,
                "attempts": len(attempts),
                "provider_id": result.provider_id,
                "error": result.error,
                "ts": now,
            }
            first = [a for a in alert_ids if a not in self._first_done] if result.ok else []
            self._first_done.update(first)
        if first:
            self.first_delivery.add([(now - created) * 1000] * len(first))
        self._m_sent.inc(tags={"actor": "Notifier", "channel": channel.name, "outcome": outcome})
        if result.ok:
            self._m_deliver.observe(
                (now - created) * 1000, tags={"actor": "Notifier", "channel": channel.name}
            )
        self._journal(
            [
                {
                    "kind": f"notification.{outcome}",
                    "actor": "Notifier",
                    "key": channel.name,
                    "ref": note.idempotency_key,
                    "alert_ids": alert_ids,
                    "provider_id": result.provider_id,
                    "error": result.error,
                    "attempts": len(attempts),
                }
            ]
        )

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                **dict(self.counts),
                "channels": [c.name for c, _ in self.channels],
                "alert_to_first_delivery_ms": self.first_delivery.percentiles((50, 99)),
            }

    def outcomes_for(self, alert_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [o for o in self.outcomes.values() if alert_id in o["alert_ids"]]

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until every queued delivery has an outcome (tests and shutdown)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self._lock:
                settled = self.counts["delivered"] + self.counts["failed"] >= self.counts["queued"]
                if settled and not self._waiting:
                    return True
            time.sleep(0.05)
        return False
