"""Sending, and what each answer leads to: delivered, retried later, failed over, or failed.

A mixin of NotifierCore (state lives there). Worker threads run `_send`; the outcome is booked
under the core's lock and journaled outside it. Retries are scheduled on the lane (a timer,
not a sleeping thread), so a struggling provider never ties up the workers other channels need.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from actors.notify.lanes import Lane
from actors.notify.outbox import Pending, outcome_record
from actors.notify.render import MARKDOWN_BUDGET, batch_line, coalesced
from gateways.channels.base import DeliveryResult, Notification
from gateways.channels.retry import backoff_delay
from rules.escalation import Contact
from rules.model import severity_rank, stable_id

log = logging.getLogger(__name__)
TEXT_BUDGET = 1900  # bytes of a coalesced WeCom text message (the robot takes 2048)


class DeliveryMixin:
    # ---- one unit on the wire ----------------------------------------------------------------

    def _batch_note(self, lane: Lane, unit: list[Pending]) -> tuple[Notification, list[Pending]]:
        """One message for a coalesced unit; what does not fit goes back to the lane."""
        if len(unit) == 1:
            return unit[0].note(), unit
        budget = MARKDOWN_BUDGET if getattr(lane.channel, "markdown", False) else TEXT_BUDGET
        kept, lines, size = [], [], 120
        for p in unit:
            line = batch_line(p.page_id, p.title, p.severity)
            if kept and size + len(line.encode()) + 1 > budget:
                break
            kept.append(p)
            lines.append(line)
            size += len(line.encode()) + 1
        rest = unit[len(kept) :]
        if rest:
            with self._lock:
                lane.ready.extendleft(reversed(rest))
        if len(kept) == 1:
            return kept[0].note(), kept
        title, text, md = coalesced(lines)
        mentions: list[str] = []
        for p in kept:
            for m in (p.recipient, *p.mentions):
                if m and m not in mentions:
                    mentions.append(m)
        keys = tuple(p.key for p in kept)
        note = Notification(
            alert_id=stable_id("batch", *keys),
            idempotency_key=stable_id("batch", *keys),
            severity=max((p.severity for p in kept), key=severity_rank),
            title=title,
            text=text,
            markdown=md,
            mentions=tuple(mentions),
            member_keys=keys,
        )
        return note, kept

    def _send(self, lane: Lane, unit: list[Pending]) -> None:
        try:
            note, unit = self._batch_note(lane, unit)
            try_id = uuid.uuid4().hex[:12]
            if not lane.idempotent:  # a restart must know this post may have gone out
                self.journal.received(
                    [
                        outcome_record(
                            "notification.sending", p, attempt=p.attempts + 1, **{"try": try_id}
                        )
                        for p in unit
                    ]
                )
            try:
                result = lane.channel.send(note)
            except Exception as exc:  # a channel bug must not lose the outcome
                result = DeliveryResult(ok=False, retry=False, error=f"{type(exc).__name__}: {exc}")
            self._on_result(lane, unit, note, result, try_id)
        except Exception:
            log.exception("notifier: sending on %s failed unexpectedly", lane.name)
            with self._lock:
                lane.answered(time.time())
                for p in unit:
                    lane.push(p, at=time.time() + 1.0)
            self._kick.set()

    # ---- booking the answer ------------------------------------------------------------------

    def _on_result(
        self,
        lane: Lane,
        unit: list[Pending],
        note: Notification,
        result: DeliveryResult,
        try_id: str,
    ) -> None:
        now = time.time()
        batch = note.idempotency_key if note.member_keys else None
        records: list[dict[str, Any]] = []
        failover: list[Pending] = []
        with self._lock:
            lane.answered(now)
            lane.breaker.record(result.ok or not result.retry, now)
            self.counts["attempts"] += len(unit)
            for p in unit:
                p.attempts += 1
                self._tick(lane.name, "sent")
                records.append(
                    outcome_record(
                        "notification.attempt",
                        p,
                        attempt=p.attempts,
                        ok=result.ok,
                        retry=result.retry,
                        status=result.status,
                        code=result.code,
                        error=result.error,
                        provider_id=result.provider_id,
                        latency_ms=result.latency_ms,
                        batch=batch,
                        **{"try": try_id},
                    )
                )
                if result.ok:
                    records.append(self._book_delivered(lane, p, result, now, batch))
                    continue
                acked = self.pages.get(p.page_id) is not None and self.pages[p.page_id].acked
                if acked:
                    records.append(self._book_final(lane, p, "cancelled", "acknowledged"))
                elif (
                    result.retry
                    and p.attempts < self.s.max_attempts
                    and not lane.breaker.is_open(now)
                ):
                    self._tick(lane.name, "retried")
                    delay = backoff_delay(
                        p.attempts, base_delay=self.s.base_delay_s, max_delay=self.s.max_delay_s
                    )
                    p.not_before = now + delay
                    if not lane.push(p, at=now + delay):
                        self._spilled(lane, p)
                elif lane.failover:
                    failover.append(p)
                else:
                    records.append(self._book_final(lane, p, "failed", result.error or "failed"))
        if lane.idempotent:
            self.journal.append(records)
        else:  # no provider-side dedup: the outcome must be on record before we move on
            self.journal.received(records)
        if failover:
            self._failover(lane, failover, result.error or "failed")
        self._kick.set()

    def _book_delivered(
        self, lane: Lane, p: Pending, result: DeliveryResult, now: float, batch: str | None
    ) -> dict[str, Any]:
        """Under the lock: figures, page state and the delivered record of one notification."""
        self.items.pop(p.key, None)
        self.counts["delivered"] += 1
        self._tick(lane.name, "delivered")
        latency_ms = (now - p.created_ts) * 1000
        self._m_deliver.observe(latency_ms, tags={"actor": "Notifier", "channel": lane.name})
        self.outcomes[p.key] = {
            "channel": lane.name,
            "recipient": p.recipient,
            "alert_ids": p.alert_ids,
            "page_id": p.page_id,
            "outcome": "delivered",
            "attempts": p.attempts,
            "provider_id": result.provider_id,
            "ts": now,
        }
        page = self.pages.get(p.page_id)
        if page is not None:
            page.delivered += 1
            if page.first_delivery_ts is None:
                page.first_delivery_ts = now
                self.first_delivery.add([latency_ms] * len(p.alert_ids))
                self.counts["pages_delivered"] += 1
                self.counts["pages_within_60s"] += int(latency_ms <= 60_000)
                ratio = self.counts["pages_within_60s"] / self.counts["pages_delivered"]
                self._m_within.set(ratio, tags={"actor": "Notifier"})
        return outcome_record(
            "notification.delivered",
            p,
            provider_id=result.provider_id,
            attempts=p.attempts,
            batch=batch,
            latency_ms=round(latency_ms, 3),
        )

    def _book_final(self, lane: Lane, p: Pending, outcome: str, why: str) -> dict[str, Any]:
        self.items.pop(p.key, None)
        self.counts[outcome] += 1
        self._tick(lane.name, outcome)
        self.outcomes[p.key] = {
            "channel": lane.name,
            "recipient": p.recipient,
            "alert_ids": p.alert_ids,
            "page_id": p.page_id,
            "outcome": outcome,
            "attempts": p.attempts,
            "error": why,
            "ts": time.time(),
        }
        return outcome_record(f"notification.{outcome}", p, attempts=p.attempts, error=why)

    # ---- failover ----------------------------------------------------------------------------

    def _failover(self, lane: Lane, items: list[Pending], why: str) -> None:
        """Send each item on the first failover channel that is not down, to the same person."""
        now = time.time()
        moved: list[Pending] = []
        records: list[dict[str, Any]] = []
        with self._lock:
            for p in items:
                made = self._failover_one(lane, p, now)
                if made:
                    moved.extend(made)
                    self.items.pop(p.key, None)
                    self.counts["failover"] += 1
                    self._tick(lane.name, "failover")
                    self.outcomes[p.key] = {
                        "channel": lane.name,
                        "page_id": p.page_id,
                        "alert_ids": p.alert_ids,
                        "outcome": "failover",
                        "to": [m.key for m in made],
                        "ts": now,
                    }
                    records.append(
                        outcome_record(
                            "notification.failover",
                            p,
                            error=why,
                            to=[m.key for m in made],
                            attempts=p.attempts,
                        )
                    )
                elif lane.breaker.is_open(now):  # every way out is down: wait for the probe
                    lane.push(p, at=lane.breaker.opened_at + lane.breaker.cooldown_s)
                else:
                    records.append(self._book_final(lane, p, "failed", why))
        self._commit(records, moved)

    def _failover_one(self, lane: Lane, p: Pending, now: float) -> list[Pending]:
        for target in lane.failover:
            other = self.lanes[target]
            if other.breaker.is_open(now):
                continue
            if p.contact:
                addr = Contact(**p.contact).address(other.kind)
                if not addr:
                    continue
                targets = [("", [addr])] if other.kind == "wecom" else [(addr, [])]
            else:
                targets = [(r, []) for r in other.recipients]
            return [
                Pending(
                    key=stable_id(p.key, "failover", target, r, *m),
                    channel=target,
                    recipient=r,
                    page_id=p.page_id,
                    alert_ids=p.alert_ids,
                    severity=p.severity,
                    title=p.title,
                    text=p.text,
                    markdown=p.markdown,
                    fields=p.fields,
                    created_ts=p.created_ts,
                    step=p.step,
                    mentions=m,
                    contact=p.contact,
                    ack_url=p.ack_url,
                )
                for r, m in targets
                if stable_id(p.key, "failover", target, r, *m) not in self.known_keys
            ]
        return []
