"""The notification state machine: `apply(state, input, now) -> Effects`.

Pipeline, Alertmanager's order with what it lacks (acknowledgement, time-based escalation):
alerts arrive already grouped by the Correlator's hygiene (dedup → inhibit → silence → repeat →
group); here a group larger than `group_over` becomes one digest page, any other alert its own
page — no second grouping window. A page follows the escalation chain its route picks; each due
step queues one notification per on-call person (a WeCom robot: one post @mentioning them),
journaled durably and held until written (the outbox); lanes hand them out under rate limits and
breakers (see `delivery`); an acknowledgement stops the chain and cancels what is still queued.

A restart is an input too: `Replay` applies the journal's records so what was queued and not
finished is sent again and nothing journaled as delivered is.
"""

from __future__ import annotations

import dataclasses
import heapq
import random
from typing import Any

from rules.escalation import expand
from rules.journal_records import notify as rec_
from rules.model import Alert, stable_id
from rules.notify import delivery
from rules.notify.inputs import (
    APPEND,
    DURABLE,
    Ack,
    AlertsIn,
    Effects,
    Journaled,
    Loaded,
    ProviderStatus,
    Replay,
    Result,
    Tick,
)
from rules.notify.lanes import build_lane
from rules.notify.model import LaneSpec, Page, Pending, Settings, about
from rules.notify.outbox import resume_state
from rules.notify.render import render
from rules.notify.routing import CHANNEL_ROSTER, Routing, recipients
from rules.notify.state import NotifyState, book_final, commit, enqueue, register_page, step_record


def new_state(
    settings: Settings, lanes: list[LaneSpec], routing: Routing, spill: bool = True
) -> NotifyState:
    """`spill` False (no journal to read back from): lanes are unbounded."""
    s = settings
    for spec in lanes:
        unknown = [f for f in spec.failover if f not in {x.name for x in lanes} or f == spec.name]
        if unknown:
            raise ValueError(f"channel {spec.name!r}: failover to unknown channel(s) {unknown}")
    limit = s.queue_limit if spill else 10**9
    built = {
        x.name: build_lane(x, limit, s.coalesce_max, s.breaker_failures, s.breaker_cooldown_s)
        for x in lanes
    }
    return NotifyState(s, built, routing, rng=random.Random(s.seed))


def apply(st: NotifyState, inp: Any, now: float) -> Effects:
    eff = Effects()
    if isinstance(inp, Tick):
        _fire(st, eff, now)
        for lane in st.lanes.values():
            keys = lane.take_spilled()
            if keys:
                eff.loads.append((lane.name, keys))
        wake = delivery.pump(st, eff, now)
        st.wake = eff.wake = min(wake, st.steps[0][0]) if st.steps else wake
    elif isinstance(inp, Result):
        delivery.on_result(st, eff, inp, now)
    elif isinstance(inp, Journaled):
        _release(st, eff, inp.token, now)
    elif isinstance(inp, AlertsIn):
        _accept(st, eff, list(inp.alerts), now)
    elif isinstance(inp, Ack):
        eff.reply = _ack(st, eff, inp, now)
    elif isinstance(inp, ProviderStatus):
        eff.reply = _status(st, eff, inp)
    elif isinstance(inp, Loaded):
        _loaded(st, eff, inp, now)
    elif isinstance(inp, Replay):
        _replay(st, eff, inp, now)
    else:
        raise TypeError(f"notify machine: unknown input {type(inp).__name__}")
    return eff


# ---- alerts to pages -----------------------------------------------------------------------


def _accept(st: NotifyState, eff: Effects, alerts: list[Alert], now: float) -> None:
    accepted = [rec_.Accepted(key=a.rule_id, ref=a.alert_id, alert=a.to_record()) for a in alerts]
    eff.write(DURABLE, [r.to_record() for r in accepted])
    st.counts["alerts"] += len(alerts)
    _open_pages(st, eff, alerts, now)


def _batches(alerts: list[Alert], group_over: int) -> list[list[Alert]]:
    """The Correlator's groups (attributes["group"]["id"]) as they came: a group larger than
    `group_over` is one digest, anything else one page per alert."""
    groups: dict[str, list[Alert]] = {}
    out: list[list[Alert]] = []
    for a in alerts:
        gid = (a.attributes.get("group") or {}).get("id") if a.attributes else None
        if gid:
            if gid not in groups:
                groups[gid] = []
                out.append(groups[gid])
            groups[gid].append(a)
        else:
            out.append([a])
    flat: list[list[Alert]] = []
    for batch in out:
        flat.extend([batch] if len(batch) > group_over else ([a] for a in batch))
    return flat


def _open_pages(st: NotifyState, eff: Effects, alerts: list[Alert], now: float) -> None:
    records: list[dict[str, Any]] = []
    for batch in _batches(alerts, st.settings.group_over):
        ids = [a.alert_id for a in batch]
        page_id = ids[0] if len(batch) == 1 else stable_id("group", *sorted(ids))
        if page_id in st.pages or all(a in st.alert_page for a in ids):
            st.counts["deduplicated"] += 1
            continue
        first = batch[0]
        title, text, md, fields = render(batch, st.settings.console_url)
        group = str(first.attributes.get("group_path", ""))
        chain = st.routing.chain_for(first.severity, first.dimension, first.key, group)
        page = Page(
            page_id,
            ids,
            first.severity,
            chain.name,
            expand(chain),
            now,
            min(a.created_ts for a in batch),
            title,
            text,
            md,
            {k: v for k, v in fields.items() if isinstance(v, (int, float, str))},
            first.dimension,
            first.key,
        )
        records.append(page.opened_record())
        register_page(st, page)
    _fire(st, eff, now, records)


# ---- escalation steps ----------------------------------------------------------------------


def _fire(st: NotifyState, eff: Effects, now: float, records: list | None = None) -> None:
    """Fire every step that is due: page, step and queued records in one durable entry."""
    records = list(records or [])
    pending: list[Pending] = []
    while st.steps and st.steps[0][0] <= now:
        _, page_id, index = heapq.heappop(st.steps)
        page = st.pages.get(page_id)
        if page is None or page.acked or index in page.fired:
            continue
        page.fired.add(index)
        made = _step_pendings(st, page, index, now)
        pending.extend(made)
        records.append(step_record(page, index, [p.key for p in made]))
    if records or pending:
        commit(st, eff, records, pending)


def _step_pendings(st: NotifyState, page: Page, index: int, now: float) -> list[Pending]:
    step = page.steps[index]
    lane = st.lanes[step.channel]
    contacts = st.routing.contacts(step.roster, now) if step.roster else ()
    legacy = step.roster == CHANNEL_ROSTER
    out = []
    for recipient, mentions, contact in recipients(lane.kind, contacts, list(lane.spec.recipients)):
        who = recipient or ",".join(mentions)
        key = (
            stable_id(page.page_id, lane.name, recipient)
            if legacy
            else stable_id(page.page_id, step.index, lane.name, who)
        )
        by = (contact or {}).get("name") or who or lane.name
        out.append(
            Pending(
                key,
                lane.name,
                recipient,
                page.page_id,
                page.alert_ids,
                page.severity,
                page.title,
                page.text,
                page.markdown,
                page.fields,
                page.created_ts,
                step.index,
                mentions,
                contact,
                by,
            )
        )
    return out


def _release(st: NotifyState, eff: Effects, token: int, now: float) -> None:
    """The queued records are written: the lanes may hand these out (unless acknowledged)."""
    cancelled = []
    for p in st.held.pop(token, []):
        if st.acked(p.page_id):
            cancelled.append(book_final(st, eff, p, "cancelled", "acknowledged", now))
        else:
            enqueue(st, eff, p, now)
    eff.write(APPEND, cancelled)


def _loaded(st: NotifyState, eff: Effects, inp: Loaded, now: float) -> None:
    """Spilled notifications read back from the journal."""
    records = []
    for key, rec in inp.records:
        if rec is None:  # the journal lost it: say so rather than wait for it forever
            p = Pending(key, inp.channel, "", "", [], "info", "", "", None, {}, now)
            records.append(book_final(st, eff, p, "failed", "not in the journal", now))
            continue
        p = Pending.from_record(rec)
        if st.acked(p.page_id):
            records.append(book_final(st, eff, p, "cancelled", "acknowledged", now))
        else:
            enqueue(st, eff, p, now)
    eff.write(APPEND, records)


# ---- acknowledgement and provider callbacks ------------------------------------------------


def _ack(st: NotifyState, eff: Effects, inp: Ack, now: float) -> dict[str, Any] | None:
    """The page's summary after the ack (None for an unknown id)."""
    page = st.pages.get(st.alert_page.get(inp.alert_id, inp.alert_id))
    if page is None:
        st.counts["ack_unknown"] += 1
        return None
    if page.acked:
        return {**page.summary(), "already": True}
    acked = rec_.AlertAcked(
        actor=rec_.ACTOR,
        key=inp.via,
        ref=page.page_id,
        alert_ids=page.alert_ids,
        by=inp.by,
        via=inp.via,
        ts=now,
        after_s=round(now - page.started, 3),
    )
    rec = acked.to_record()
    eff.write(DURABLE, [rec])
    page.acked = rec
    st.counts["acked"] += 1
    gone = [p for lane in st.lanes.values() for p in lane.remove(page.page_id)]
    eff.write(APPEND, [book_final(st, eff, p, "cancelled", "acknowledged", now) for p in gone])
    eff.metric("ack_s", max(0.0, now - page.created_ts), via=inp.via)
    return {**page.summary(), "already": False, "cancelled": len(gone)}


def _status(st: NotifyState, eff: Effects, inp: ProviderStatus) -> bool:
    outcome = st.outcomes.get(inp.key)
    if outcome is None and inp.key not in st.open:
        st.counts["status_unknown"] += 1
        return False
    p = inp.params
    status = p.get("MessageStatus") or p.get("CallStatus") or "?"
    channel = (outcome or {}).get("channel") or getattr(st.items.get(inp.key), "channel", "")
    st.counts[f"status_{status}"] += 1
    if status in ("delivered", "completed"):
        st.per_channel[f"{channel}.confirmed"] += 1
        eff.metric("sent", 1, channel=channel, outcome="confirmed")
    sid = p.get("MessageSid") or p.get("CallSid")
    status_rec = rec_.Status(
        key=channel, ref=inp.key, status=status, sid=sid, error_code=p.get("ErrorCode")
    )
    eff.write(APPEND, [status_rec.to_record()])
    return True


# ---- restart -------------------------------------------------------------------------------


def _replay(st: NotifyState, eff: Effects, inp: Replay, now: float) -> None:
    """Resume from the journal: pages and their fired steps, what was queued and not finished
    (sent again, flagged uncertain when a post without provider dedup was in flight), and
    accepted alerts no page covers yet."""
    state = resume_state(inp.by_kind)
    records: list[dict[str, Any]] = []
    for bad in state.unreadable:  # counted and journaled; the rest resumes
        st.counts["resume_unreadable"] += 1
        bad_rec = rec_.Unresumable(ref=bad["ref"], record_seq=bad["seq"], reason=bad["reason"])
        records.append(bad_rec.to_record())
    for rec in state.pages:
        page = Page.from_record(rec)
        page.fired = state.fired.get(page.page_id, set())
        page.acked = state.acked.get(page.page_id)
        register_page(st, page)
    st.known_keys.update(state.delivered_keys)
    for p in state.pending:
        st.known_keys.add(p.key)
        if p.channel not in st.lanes or st.acked(p.page_id):
            why = "acknowledged" if st.acked(p.page_id) else "channel gone"
            records.append(about(rec_.Cancelled, p, error=why))
            st.counts["cancelled"] += 1
            continue
        idem = st.lanes[p.channel].spec.idempotent
        was = state.stuck.get(p.key, {})
        records.append(
            about(
                rec_.Resumed,
                p,
                uncertain=p.uncertain,
                idempotent=idem,
                try_id=str(was.get("try", "")),
                sending_ts=was.get("at", was.get("ts")),
            )
        )
        st.counts["resumed"] += 1
        st.counts["uncertain"] += int(p.uncertain)
        enqueue(st, eff, p, now)
    eff.write(APPEND, records)
    alerts = [
        Alert(**{f.name: a[f.name] for f in dataclasses.fields(Alert) if f.name in a})
        for a in state.unpaged
    ]
    st.counts["resumed_alerts"] += len(alerts)
    if alerts:
        _open_pages(st, eff, alerts, now)


# ---- reads ---------------------------------------------------------------------------------


def stats(st: NotifyState) -> dict[str, Any]:
    return {
        **dict(st.counts),
        "channels": list(st.lanes),
        "per_channel": dict(st.per_channel),
        "queue_depth": {n: lane.depth() for n, lane in st.lanes.items()},
        "in_flight": {n: lane.in_flight for n, lane in st.lanes.items()},
        "breakers": {n: lane.breaker.state for n, lane in st.lanes.items()},
        "pages": len(st.pages),
        "open_pages": sum(1 for p in st.pages.values() if not p.acked),
        "open_notifications": len(st.open),
    }


def alerts(st: NotifyState, state: str = "all") -> list[dict[str, Any]]:
    rows = [p.summary() for p in st.pages.values()]
    if state != "all":
        rows = [r for r in rows if r["state"] == state]
    return sorted(rows, key=lambda r: r["started"])


def outcomes_for(st: NotifyState, alert_id: str) -> list[dict[str, Any]]:
    return [o for o in st.outcomes.values() if alert_id in o.get("alert_ids", ())]
