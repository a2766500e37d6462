"""The notification machine's state, and the bookkeeping every transition shares.

Everything a transition changes lives in one `NotifyState`; the functions here book the final
outcome of a notification (delivered, failed, cancelled) and queue fresh ones behind the outbox
rule (journaled durably before a lane may hand them out). `machine` and `delivery` both call
them; they call neither back.

A notification key is *open* from the moment its queued record is emitted until its final outcome
is booked — held for the journal, ready, waiting for a retry, spilled to the journal, being read
back or in flight. `settled` is "nothing open and nothing in flight", the one definition the
shell's drain relies on.
"""

from __future__ import annotations

import collections
import heapq
import itertools
import random
from dataclasses import dataclass, field
from typing import Any

from rules.journal_records import notify as rec_
from rules.notify.inputs import DURABLE, Effects
from rules.notify.lanes import Lane
from rules.notify.model import Page, Pending, Settings, about
from rules.notify.routing import Routing


@dataclass
class Flight:
    """One post on the wire: the notifications it carries (several when coalesced)."""

    channel: str
    unit: list[Pending]
    batch: str | None  # the coalesced message's key, else None


@dataclass
class NotifyState:
    settings: Settings
    lanes: dict[str, Lane]
    routing: Routing
    pages: dict[str, Page] = field(default_factory=dict)
    alert_page: dict[str, str] = field(default_factory=dict)
    open: set[str] = field(default_factory=set)  # keys without a final outcome
    items: dict[str, Pending] = field(default_factory=dict)  # open and held in memory
    known_keys: set[str] = field(default_factory=set)  # every key ever queued (dedup)
    outcomes: dict[str, dict[str, Any]] = field(default_factory=dict)
    steps: list[tuple[float, str, int]] = field(default_factory=list)  # (due, page, step) heap
    held: dict[int, list[Pending]] = field(default_factory=dict)  # journal token -> queued
    flights: dict[str, Flight] = field(default_factory=dict)
    counts: collections.Counter = field(default_factory=collections.Counter)
    per_channel: collections.Counter = field(default_factory=collections.Counter)
    rng: random.Random = field(default_factory=random.Random)
    tokens: itertools.count = field(default_factory=lambda: itertools.count(1))
    tries: itertools.count = field(default_factory=itertools.count)
    wake: float = 0.0  # when a Tick is next worth applying

    def settled(self) -> bool:
        return not self.open and not self.flights

    def acked(self, page_id: str) -> bool:
        page = self.pages.get(page_id)
        return page is not None and page.acked is not None


def tick(st: NotifyState, eff: Effects, channel: str, outcome: str) -> None:
    st.per_channel[f"{channel}.{outcome}"] += 1
    eff.metric("sent", 1, channel=channel, outcome=outcome)


def register_page(st: NotifyState, page: Page) -> None:
    st.pages[page.page_id] = page
    for a in page.alert_ids:
        st.alert_page[a] = page.page_id
    if not page.acked:
        for step in page.steps:
            if step.index not in page.fired:
                heapq.heappush(st.steps, (page.started + step.at_s, page.page_id, step.index))


def enqueue(st: NotifyState, eff: Effects, p: Pending, now: float, at: float = 0.0) -> None:
    """Put an open notification on its lane (or spill it to the journal when the lane is full)."""
    lane = st.lanes[p.channel]
    p.not_before = at or now
    st.items[p.key] = p
    st.open.add(p.key)
    if not lane.push(p, at=at):
        st.items.pop(p.key, None)
        st.counts["spilled"] += 1
        eff.metric("spilled", 1, channel=lane.name)


def commit(
    st: NotifyState, eff: Effects, records: list[dict[str, Any]], pending: list[Pending]
) -> list[Pending]:
    """Journal durably, hold until written: nothing is sent that a restart would not know of."""
    fresh = []
    for p in pending:
        if p.key in st.known_keys:
            st.counts["deduplicated"] += 1
            continue
        st.known_keys.add(p.key)
        st.open.add(p.key)
        fresh.append(p)
    eff.write(DURABLE, records + [p.queued_record() for p in fresh])
    if fresh:
        if eff.token is None:
            eff.token = next(st.tokens)
        st.held.setdefault(eff.token, []).extend(fresh)
        st.counts["queued"] += len(fresh)
    return fresh


def book_delivered(
    st: NotifyState,
    eff: Effects,
    p: Pending,
    provider_id: str | None,
    now: float,
    batch: str | None,
) -> dict[str, Any]:
    """Figures, page state and the delivered record of one notification."""
    channel = p.channel
    st.open.discard(p.key)
    st.items.pop(p.key, None)
    st.counts["delivered"] += 1
    tick(st, eff, channel, "delivered")
    latency_ms = (now - p.created_ts) * 1000
    eff.metric("deliver_ms", latency_ms, channel=channel)
    st.outcomes[p.key] = {
        "channel": channel,
        "recipient": p.recipient,
        "alert_ids": p.alert_ids,
        "page_id": p.page_id,
        "outcome": "delivered",
        "attempts": p.attempts,
        "provider_id": provider_id,
        "ts": now,
    }
    page = st.pages.get(p.page_id)
    if page is not None:
        page.delivered += 1
        if page.first_delivery_ts is None:
            page.first_delivery_ts = now
            eff.metric("first_delivery_ms", latency_ms, alerts=str(len(p.alert_ids)))
            st.counts["pages_delivered"] += 1
            st.counts["pages_within_60s"] += int(latency_ms <= 60_000)
            eff.metric("within_60s", st.counts["pages_within_60s"] / st.counts["pages_delivered"])
    return about(
        rec_.Delivered,
        p,
        provider_id=provider_id,
        attempts=p.attempts,
        batch=batch,
        latency_ms=round(latency_ms, 3),
    )


def book_final(
    st: NotifyState, eff: Effects, p: Pending, outcome: str, why: str, now: float
) -> dict[str, Any]:
    """A notification that ends without delivery: failed or cancelled."""
    st.open.discard(p.key)
    st.items.pop(p.key, None)
    st.counts[outcome] += 1
    tick(st, eff, p.channel, outcome)
    st.outcomes[p.key] = {
        "channel": p.channel,
        "recipient": p.recipient,
        "alert_ids": p.alert_ids,
        "page_id": p.page_id,
        "outcome": outcome,
        "attempts": p.attempts,
        "error": why,
        "ts": now,
    }
    cls = rec_.Cancelled if outcome == "cancelled" else rec_.Failed
    return about(cls, p, attempts=p.attempts, error=why)


def step_record(page: Page, index: int, keys: list[str]) -> dict[str, Any]:
    step = page.steps[index]
    return rec_.StepFired(
        key=step.channel,
        ref=page.page_id,
        step=index,
        level=step.level,
        roster=step.roster,
        at_s=step.at_s,
        keys=keys,
    ).to_record()
