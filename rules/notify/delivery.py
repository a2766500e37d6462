"""Delivery transitions: hand lanes' units out as posts, and book each answer — delivered,
retried later (backoff with seeded jitter), failed over to the next channel, or failed.

Posts to a provider that cannot recognise a resent request (WeCom's robot, SMTP) are bracketed
in the journal: `notification.sending` is committed before the post, the answer (the attempt,
and `notification.delivered` when the provider accepted: WeCom errcode 0, SMTP 250 after DATA)
after it, so a restart re-sends only what is stuck in `sending` (rules.notify.outbox).

Like Alertmanager's integrations, the channel decides *whether* a failure is worth retrying (its
answer becomes RETRYABLE or FINAL); this module decides *when*, and what a circuit breaker that
opened means (fail over to a channel that is up, to the same person).
"""

from __future__ import annotations

from typing import Any

from rules.escalation import Contact
from rules.journal_records import notify as rec_
from rules.model import severity_rank, stable_id
from rules.notify.backoff import backoff_delay
from rules.notify.inputs import (
    ACCEPTED,
    APPEND,
    DURABLE,
    FINAL,
    RETRYABLE,
    UNCERTAIN,
    Effects,
    Result,
    Send,
)
from rules.notify.lanes import Lane
from rules.notify.model import Message, Pending, about
from rules.notify.render import MARKDOWN_BUDGET, TEXT_BUDGET, batch_line, coalesced
from rules.notify.state import (
    Flight,
    NotifyState,
    book_delivered,
    book_final,
    commit,
    enqueue,
    tick,
)

CHANNEL_FORM = {"twilio_sms": "sms", "twilio_voice": "voice"}  # a channel's own text (render.py)


def pump(st: NotifyState, eff: Effects, now: float) -> float:
    """Hand out what every lane may send now; returns the next time worth waking up at."""
    wake = now + 1.0
    for lane in st.lanes.values():
        units, moved, at = lane.pump(now)
        wake = min(wake, at)
        for unit in units:
            _post(st, eff, lane, unit, now)
        if moved:
            failover(st, eff, lane, moved, "circuit open", now)
    return wake


def _post(st: NotifyState, eff: Effects, lane: Lane, unit: list[Pending], now: float) -> None:
    message, unit = _message(lane, unit)
    try_id = f"{st.settings.session}{next(st.tries)}"
    batch = message.idempotency_key if message.member_keys else None
    st.flights[try_id] = Flight(lane.name, unit, batch)
    if not lane.spec.idempotent:  # committed before the post: a restart knows it may be out
        eff.write(
            DURABLE,
            [about(rec_.Sending, p, attempt=p.attempts + 1, try_id=try_id, at=now) for p in unit],
        )
    eff.sends.append(Send(try_id, lane.name, message))


def _message(lane: Lane, unit: list[Pending]) -> tuple[Message, list[Pending]]:
    """One message for a unit; what does not fit a coalesced post goes back to the lane."""
    if len(unit) == 1:
        return unit[0].message(CHANNEL_FORM.get(lane.spec.kind, "")), unit
    budget = MARKDOWN_BUDGET if lane.spec.markdown else TEXT_BUDGET
    kept: list[Pending] = []
    lines: list[str] = []
    size = 120
    for p in unit:
        line = batch_line(p.page_id, p.title, p.severity)
        if kept and size + len(line.encode()) + 1 > budget:
            break
        kept.append(p)
        lines.append(line)
        size += len(line.encode()) + 1
    lane.ready.extendleft(reversed(unit[len(kept) :]))
    if len(kept) == 1:
        return kept[0].message(), kept
    title, text, md = coalesced(lines)
    mentions: list[str] = []
    for p in kept:
        for m in (p.recipient, *p.mentions):
            if m and m not in mentions:
                mentions.append(m)
    keys = tuple(p.key for p in kept)
    message = Message(
        alert_id=stable_id("batch", *keys),
        idempotency_key=stable_id("batch", *keys),
        severity=max((p.severity for p in kept), key=severity_rank),
        title=title,
        text=text,
        markdown=md,
        mentions=tuple(mentions),
        member_keys=keys,
    )
    return message, kept


def on_result(st: NotifyState, eff: Effects, r: Result, now: float) -> None:
    """Book a provider's answer to one post (a stale or unknown try id is counted, ignored)."""
    flight = st.flights.pop(r.try_id, None)
    if flight is None:
        st.counts["result_unknown"] += 1
        return
    lane = st.lanes[flight.channel]
    s = st.settings
    ok = r.outcome == ACCEPTED
    # An unanswered post on a lane without provider dedup may have been stored: where the
    # lane has a failover, go there rather than post it again here (no second copy); with no
    # way out, resend (at least once: a page must not be lost for fear of a duplicate).
    late = unanswered(r) and not lane.spec.idempotent and bool(lane.spec.failover)
    outcome = UNCERTAIN if late else r.outcome
    # UNCERTAIN: the post may have gone out; resend only where the provider dedups.
    retry = outcome == RETRYABLE or (outcome not in (ACCEPTED, FINAL) and lane.spec.idempotent)
    if late:
        st.counts["unanswered_failed_over"] += len(flight.unit)
    lane.answered(now)
    lane.breaker.record(ok or r.outcome == FINAL, now)
    st.counts["attempts"] += len(flight.unit)
    records: list[dict[str, Any]] = []
    moved: list[Pending] = []
    for p in flight.unit:
        p.attempts += 1
        tick(st, eff, lane.name, "sent")
        records.append(
            about(
                rec_.Attempt,
                p,
                attempt=p.attempts,
                ok=ok,
                retry=retry,
                status=r.status,
                code=r.code,
                error=r.error,
                provider_id=r.provider_id,
                latency_ms=r.latency_ms,
                batch=flight.batch,
                try_id=r.try_id,
            )
        )
        if ok:
            records.append(book_delivered(st, eff, p, r.provider_id, now, flight.batch))
        elif st.acked(p.page_id):
            records.append(book_final(st, eff, p, "cancelled", "acknowledged", now))
        elif retry and p.attempts < s.max_attempts and not lane.breaker.is_open(now):
            tick(st, eff, lane.name, "retried")
            delay = backoff_delay(
                p.attempts,
                base_delay=s.base_delay_s,
                max_delay=s.max_delay_s,
                jitter=s.jitter,
                rng=st.rng,
            )
            enqueue(st, eff, p, now, at=now + delay)
        elif lane.spec.failover:
            moved.append(p)
        else:
            records.append(book_final(st, eff, p, "failed", r.error or "failed", now))
    # No provider-side dedup: the outcome (`accepted` = the attempt ok and the delivered
    # record) is committed before anything moves on; from the provider's accept to this commit
    # is the residual window in which a crash makes the restart send the message again.
    eff.write(APPEND if lane.spec.idempotent else DURABLE, records)
    if moved:
        failover(st, eff, lane, moved, r.error or "failed", now)


def unanswered(r: Result) -> bool:
    """The provider did not answer in time (the channels' "timeout after …", TimeoutError):
    it may have stored the post — its answer was only late. A channel calls that retryable;
    on a provider without dedup (WeCom robot, SMTP) a resend is then a second delivery
    (notify-1000's duplicate under load). A refused connection or a 5xx is an answer."""
    return r.outcome == RETRYABLE and r.status is None and "timeout" in (r.error or "").lower()


def failover(
    st: NotifyState, eff: Effects, lane: Lane, items: list[Pending], why: str, now: float
) -> None:
    """Send each item on the first failover channel that is up, to the same person."""
    made_all: list[Pending] = []
    records: list[dict[str, Any]] = []
    for p in items:
        made = _failover_one(st, lane, p, now)
        if made:
            made_all.extend(made)
            st.open.discard(p.key)
            st.items.pop(p.key, None)
            st.counts["failover"] += 1
            tick(st, eff, lane.name, "failover")
            to = [m.key for m in made]
            st.outcomes[p.key] = {
                "channel": lane.name,
                "page_id": p.page_id,
                "alert_ids": p.alert_ids,
                "outcome": "failover",
                "to": to,
                "ts": now,
            }
            records.append(about(rec_.FailedOver, p, error=why, to=to, attempts=p.attempts))
        elif lane.breaker.is_open(now):  # every way out is down: wait for the probe
            enqueue(st, eff, p, now, at=lane.breaker.opened_at + lane.breaker.cooldown_s)
        else:
            records.append(book_final(st, eff, p, "failed", why, now))
    if made_all:
        commit(st, eff, records, made_all)
    else:
        eff.write(DURABLE if records else APPEND, records)


def _failover_one(st: NotifyState, lane: Lane, p: Pending, now: float) -> list[Pending]:
    for target in lane.spec.failover:
        other = st.lanes[target]
        if other.breaker.is_open(now):
            continue
        if p.contact:
            addr = Contact(**p.contact).address(other.kind)
            if not addr:
                continue
            targets = [("", [addr])] if other.kind == "wecom" else [(addr, [])]
        else:
            targets = [(r, []) for r in other.spec.recipients]
        out = []
        for r, m in targets:
            key = stable_id(p.key, "failover", target, r, *m)
            if key not in st.known_keys:
                out.append(
                    Pending(
                        key=key,
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
                        ack_by=p.ack_by,
                    )
                )
        return out
    return []
