"""NotifierCore: the Notifier actor's state and loops, without Ray's decorator.

Pipeline: accept (journaled) → group per rule within group_wait_s → open a page per alert or
digest, routed to an escalation chain → fire the chain's steps when due (journal page, step and
every queued notification durably, then queue them on their channels' lanes) → the scheduler
hands lanes' units to worker threads → each answer is booked (delivered / retry later / fail
over / failed). An acknowledgement (HTTP, CLI, voice keypress, reply link) is journaled durably,
stops the page's remaining steps and cancels what it still had queued.

After a restart the constructor rebuilds all of that from the journal (`outbox.resume_state`):
what was accepted but not paged, pages not acknowledged and their fired steps, notifications
queued without an outcome.
"""

from __future__ import annotations

import collections
import dataclasses
import heapq
import logging
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from actors.notify import routing as rt
from actors.notify.delivery import DeliveryMixin
from actors.notify.journal import Journal
from actors.notify.lanes import DEFAULT_RATE, Lane
from actors.notify.outbox import ACTOR, Pending, outcome_record, resume_state
from actors.notify.pages import Page
from actors.notify.render import render
from gateways.channels import build_channel
from gateways.channels.base import is_loopback, resolve_secret
from gateways.channels.breaker import CircuitBreaker
from gateways.channels.ratelimit import SlidingWindow
from gateways.operator_http import OperatorServer, UnknownAlert, sign_link
from infra import metrics
from infra.config import NotifierConfig
from infra.stats import LatencyRing
from rules.escalation import expand
from rules.model import Alert, stable_id

log = logging.getLogger(__name__)

RESUME_KINDS = (
    "notification.accepted",
    "escalation.opened",
    "escalation.step",
    "alert.acked",
    "notification.queued",
    "notification.sending",
    "notification.attempt",
    "notification.delivered",
    "notification.failed",
    "notification.cancelled",
    "notification.failover",
)


class NotifierCore(DeliveryMixin):
    def __init__(
        self,
        channels: list[dict[str, Any]],
        audit: Any = None,
        settings: NotifierConfig | None = None,
        **overrides: Any,
    ) -> None:
        self.s = s = dataclasses.replace(settings or NotifierConfig(), **overrides)
        self.journal = Journal(audit)
        self._lock = threading.RLock()
        self._ack_lock = threading.Lock()
        self._kick = threading.Event()
        self.counts: collections.Counter = collections.Counter()
        self.per_channel: collections.Counter = collections.Counter()
        self.first_delivery = LatencyRing()
        self.pages: dict[str, Page] = {}
        self.alert_page: dict[str, str] = {}
        self.items: dict[str, Pending] = {}  # queued or in flight, by key
        self.known_keys: set[str] = set()
        self.outcomes: dict[str, dict[str, Any]] = {}
        self._steps: list[tuple[float, str, int]] = []  # (due, page, step) heap
        self._waiting: dict[str, list[Alert]] = {}
        self._waiting_since: dict[str, float] = {}
        self._opening = 0
        self._depth_ts, self._depths = 0.0, {}
        self._metrics()
        self.operator, self._token = self._operator(s)
        self.lanes = self._lanes(channels)
        self.routing = rt.build_routing(s, list(self.lanes))
        workers = s.workers * max(1, len(self.lanes))
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="notify")
        self._resume()
        if self.operator is not None:
            self.operator.start()
        threading.Thread(target=self._group_loop, name="notify-group", daemon=True).start()
        threading.Thread(target=self._scheduler, name="notify-scheduler", daemon=True).start()

    # ---- construction ------------------------------------------------------------------------

    def _metrics(self) -> None:
        tags = ("actor", "channel", "outcome")
        self._m_sent = metrics.counter("notifications_total", "notification outcomes", tags)
        self._m_deliver = metrics.histogram(
            "alert_to_delivery_ms",
            "alert created to delivered",
            metrics.LATENCY_MS_BUCKETS + [10_000, 60_000],
            tag_keys=("actor", "channel"),
        )
        self._m_ack = metrics.histogram(
            "alert_to_ack_s",
            "alert created to acknowledged",
            [1, 5, 10, 30, 60, 180, 300, 600, 1800],
            tag_keys=("actor", "via"),
        )
        self._m_depth = metrics.gauge(
            "notify_queue_depth", "notifications queued per channel", ("actor", "channel")
        )
        self._m_spilled = metrics.counter(
            "notify_queue_spilled_total",
            "notifications kept in the journal only because a channel queue was full",
            ("actor", "channel"),
        )
        self._m_within = metrics.gauge(
            "notify_delivered_within_60s_ratio", "pages first delivered within 60 s of the alert"
        )
        self._m_http = metrics.counter(
            "operator_requests_total", "operator endpoint requests", ("actor", "route", "outcome")
        )

    def _tick(self, channel: str, outcome: str) -> None:
        self.per_channel[f"{channel}.{outcome}"] += 1
        self._m_sent.inc(tags={"actor": ACTOR, "channel": channel, "outcome": outcome})

    def _operator(self, s: NotifierConfig) -> tuple[OperatorServer | None, str]:
        op = s.operator
        if not op.enabled:
            return None, ""
        try:
            cfg = {"name": "operator", "token_env": op.token_env, "token": op.token}
            token = resolve_secret(cfg, "token_env", "token", base_url=f"http://{op.host}")
        except ValueError:
            if not is_loopback(f"http://{op.host}"):
                raise
            # Secure by default: a random token nobody knows; reply links and Twilio callbacks
            # still work (signed), bearer routes need FENGKONG_OPERATOR_TOKEN.
            log.warning(
                "operator endpoint: no token configured (%s); bearer routes locked", op.token_env
            )
            token = secrets.token_urlsafe(24)
        server = OperatorServer(
            _Backend(self),
            token,
            host=op.host,
            port=op.port,
            public_url=op.public_url,
            validators=self._validators,
            on_request=lambda route, outcome: self._m_http.inc(
                tags={"actor": ACTOR, "route": route, "outcome": outcome}
            ),
        )
        if op.port == 0:  # bind now so the channels learn the URL their callbacks go to
            server.start()
        return server, token

    def _validators(self) -> list[Any]:
        return [
            lane.channel.webhook_validator()
            for lane in self.lanes.values()
            if hasattr(lane.channel, "webhook_validator")
        ]

    def _lanes(self, channels: list[dict[str, Any]]) -> dict[str, Lane]:
        """One lane per channel. Besides the provider's own keys a channel block may carry:
        `to` (recipients when no roster applies), `failover` (channel names to try while this
        one is down), `rate_limit` + `rate_window_s` (WeCom defaults to 20 per 60 s; 0 turns
        it off), `max_in_flight` (default: workers) and `linger_s` (wait for a fuller batch
        under the rate limit)."""
        base = self.operator.url if self.operator is not None else None
        lanes: dict[str, Lane] = {}
        for raw in channels:
            cfg = dict(raw)
            if base and cfg.get("type") in ("twilio_sms", "twilio_voice"):
                cfg.setdefault("callback_base", base)
            channel = build_channel(cfg)
            rate = DEFAULT_RATE.get(channel.kind)
            if "rate_limit" in cfg:
                rate = (
                    (int(cfg["rate_limit"]), float(cfg.get("rate_window_s", 60.0)))
                    if cfg["rate_limit"]
                    else None
                )
            window = SlidingWindow(*rate) if rate else None
            lanes[channel.name] = Lane(
                name=channel.name,
                channel=channel,
                recipients=list(cfg.get("to", [""])) or [""],
                failover=list(cfg.get("failover", [])),
                breaker=CircuitBreaker(self.s.breaker_failures, self.s.breaker_cooldown_s),
                window=window,
                limit=self.s.queue_limit if self.journal.enabled else 10**9,
                max_in_flight=int(cfg.get("max_in_flight", self.s.workers)),
                coalesce_max=self.s.coalesce_max if window else 1,
                linger_s=float(cfg.get("linger_s", 0.5)),
            )
        for lane in lanes.values():
            unknown = [f for f in lane.failover if f not in lanes or f == lane.name]
            if unknown:
                raise ValueError(f"channel {lane.name!r}: failover to unknown channel(s) {unknown}")
        return lanes

    # ---- resume from the journal -------------------------------------------------------------

    def _resume(self) -> None:
        if not self.journal.enabled:
            return
        since = time.time() - self.s.resume_window_s
        self.journal.durable([])  # nothing to add; flush so every record sent before is readable
        state = resume_state({k: self.journal.query(kind=k, since=since) for k in RESUME_KINDS})
        now = time.time()
        records: list[dict[str, Any]] = []
        for bad in state.unreadable:  # counted and journaled; the rest resumes
            self.counts["resume_unreadable"] += 1
            records.append({"kind": "notification.unresumable", "actor": "Notifier",
                            "key": "", "ref": bad["ref"], **bad})  # fmt: skip
        for rec in state.pages:
            page = Page.from_record(rec)
            page.fired = state.fired.get(page.page_id, set())
            page.acked = state.acked.get(page.page_id)
            self._register_page(page)
        self.known_keys.update(state.delivered_keys)
        for p in state.pending:
            page = self.pages.get(p.page_id)
            self.known_keys.add(p.key)
            if p.channel not in self.lanes or (page is not None and page.acked):
                why = "acknowledged" if page is not None and page.acked else "channel gone"
                records.append(outcome_record("notification.cancelled", p, error=why))
                self.counts["cancelled"] += 1
                continue
            records.append(
                outcome_record(
                    "notification.resumed",
                    p,
                    uncertain=p.uncertain,
                    idempotent=self.lanes[p.channel].idempotent,
                )
            )
            self.counts["resumed"] += 1
            self.counts["uncertain"] += int(p.uncertain)
            self._enqueue(p, now)
        for alert in state.unpaged:
            a = Alert(
                **{f.name: alert[f.name] for f in dataclasses.fields(Alert) if f.name in alert}
            )
            self._waiting.setdefault(a.rule_id, []).append(a)
            self._waiting_since.setdefault(a.rule_id, now)
            self.counts["resumed_alerts"] += 1
        self.journal.append(records)
        if state.pending or state.pages or state.unpaged:
            log.warning(
                "notifier resumed: %d pending, %d pages, %d alerts",
                len(state.pending),
                len(state.pages),
                len(state.unpaged),
            )

    def _register_page(self, page: Page) -> None:
        self.pages[page.page_id] = page
        for a in page.alert_ids:
            self.alert_page[a] = page.page_id
        if not page.acked:
            for step in page.steps:
                if step.index not in page.fired:
                    heapq.heappush(
                        self._steps, (page.started + step.at_s, page.page_id, step.index)
                    )

    # ---- accepting and grouping --------------------------------------------------------------

    def notify(self, alerts: list[Alert]) -> int:
        """Accept alerts (journaled before this returns); they wait `group_wait_s` per rule so
        one shock makes one digest."""
        records = [
            {
                "kind": "notification.accepted",
                "actor": ACTOR,
                "key": a.rule_id,
                "ref": a.alert_id,
                "alert": a.to_record(),
            }
            for a in alerts
        ]
        self.journal.durable(records)
        now = time.time()
        with self._lock:
            for a in alerts:
                self._waiting.setdefault(a.rule_id, []).append(a)
                self._waiting_since.setdefault(a.rule_id, now)
            self.counts["alerts"] += len(alerts)
        return len(alerts)

    def _group_loop(self) -> None:
        while True:
            time.sleep(min(0.05, self.s.group_wait_s or 0.05))
            now = time.time()
            with self._lock:
                due = [r for r, t in self._waiting_since.items() if now - t >= self.s.group_wait_s]
                groups = {r: self._waiting.pop(r) for r in due}
                for r in due:
                    del self._waiting_since[r]
                self._opening += 1
            try:
                if groups:
                    self._open_pages(groups)
            except Exception:
                log.exception("notifier: opening pages failed; alerts go back to the buffer")
                with self._lock:
                    for r, items in groups.items():
                        self._waiting.setdefault(r, []).extend(items)
                        self._waiting_since.setdefault(r, time.time())
                time.sleep(1.0)
            finally:
                with self._lock:
                    self._opening -= 1

    def _open_pages(self, groups: dict[str, list[Alert]]) -> None:
        batches: list[list[Alert]] = []
        for items in groups.values():
            if len(items) > self.s.group_over:
                batches.append(items)
            else:
                batches.extend([a] for a in items)
        now = time.time()
        records: list[dict[str, Any]] = []
        pages: list[Page] = []
        for batch in batches:
            ids = [a.alert_id for a in batch]
            page_id = ids[0] if len(batch) == 1 else stable_id("group", *sorted(ids))
            with self._lock:
                if page_id in self.pages or all(a in self.alert_page for a in ids):
                    self.counts["deduplicated"] += 1
                    continue
            first = batch[0]
            title, text, md, fields = render(batch)
            group = str(first.attributes.get("group_path", ""))
            chain = self.routing.chain_for(first.severity, first.dimension, first.key, group)
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
            pages.append(page)
        with self._lock:
            for page in pages:
                self._register_page(page)
        self._fire(now, records)

    # ---- escalation steps --------------------------------------------------------------------

    def _fire(self, now: float, records: list[dict[str, Any]] | None = None) -> None:
        """Fire every step that is due; journal (with `records`) durably, then queue."""
        records = list(records or [])
        due: list[tuple[Page, int]] = []
        with self._lock:
            while self._steps and self._steps[0][0] <= now:
                _, page_id, index = heapq.heappop(self._steps)
                page = self.pages.get(page_id)
                if page is None or page.acked or index in page.fired:
                    continue
                page.fired.add(index)
                due.append((page, index))
        pending: list[Pending] = []
        for page, index in due:
            step = page.steps[index]
            made = self._step_pendings(page, step, now)
            pending.extend(made)
            records.append(
                {
                    "kind": "escalation.step",
                    "actor": ACTOR,
                    "key": step.channel,
                    "ref": page.page_id,
                    "step": index,
                    "level": step.level,
                    "roster": step.roster,
                    "at_s": step.at_s,
                    "keys": [p.key for p in made],
                }
            )
        try:
            self._commit(records, pending)
        except Exception:
            with self._lock:  # the journal is unreachable: fire these again later
                for page, index in due:
                    page.fired.discard(index)
                    heapq.heappush(self._steps, (now + 1.0, page.page_id, index))
            raise

    def _step_pendings(self, page: Page, step: Any, now: float) -> list[Pending]:
        lane = self.lanes[step.channel]
        contacts = self.routing.contacts(step.roster, now) if step.roster else ()
        legacy = step.roster == rt.CHANNEL_ROSTER
        out = []
        for recipient, mentions, contact in rt.recipients(lane.kind, contacts, lane.recipients):
            who = recipient or ",".join(mentions)
            key = (
                stable_id(page.page_id, lane.name, recipient)
                if legacy
                else stable_id(page.page_id, step.index, lane.name, who)
            )
            by = (contact or {}).get("name") or who or lane.name
            link = (
                sign_link(
                    self.operator.url, self._token, page.page_id, by, self.s.operator.link_ttl_s
                )
                if self.operator
                else ""
            )
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
                    link,
                )
            )
        return out

    def _commit(self, records: list[dict[str, Any]], pending: list[Pending]) -> None:
        """Journal durably, then queue: nothing is sent that a restart would not know of."""
        if not records and not pending:
            return
        fresh = []
        with self._lock:
            for p in pending:
                if p.key in self.known_keys:
                    self.counts["deduplicated"] += 1
                    continue
                self.known_keys.add(p.key)
                fresh.append(p)
        self.journal.durable(records + [p.queued_record() for p in fresh])
        now = time.time()
        with self._lock:
            for p in fresh:
                self._enqueue(p, now)
            self.counts["queued"] += len(fresh)
        if fresh:
            self._kick.set()

    def _enqueue(self, p: Pending, now: float) -> None:
        lane = self.lanes[p.channel]
        p.not_before = now
        self.items[p.key] = p
        self.known_keys.add(p.key)
        if not lane.push(p):
            self._spilled(lane, p)

    def _spilled(self, lane: Lane, p: Pending) -> None:
        self.items.pop(p.key, None)
        self.counts["spilled"] += 1
        self._m_spilled.inc(tags={"actor": ACTOR, "channel": lane.name})

    # ---- the scheduler -----------------------------------------------------------------------

    def _scheduler(self) -> None:
        while True:
            self._kick.clear()
            try:
                wake = self._schedule_once(time.time())
            except Exception:
                log.exception("notifier scheduler step failed")
                wake = time.time() + 0.5
            self._kick.wait(max(0.002, min(wake - time.time(), 0.25)))

    def _schedule_once(self, now: float) -> float:
        self._fire(now)
        self._refill()
        sends, moves = [], []
        with self._lock:
            wake = self._steps[0][0] if self._steps else now + 0.25
            for lane in self.lanes.values():
                units, failover, at = lane.pump(now)
                sends += [(lane, u) for u in units]
                if failover:
                    moves.append((lane, failover))
                wake = min(wake, at)
            depths = {n: lane.depth() for n, lane in self.lanes.items()}
        if now - self._depth_ts >= 0.5 and depths != self._depths:  # a gauge costs ~1 ms
            self._depth_ts, self._depths = now, depths
            for name, depth in depths.items():
                self._m_depth.set(depth, tags={"actor": ACTOR, "channel": name})
        for lane, unit in sends:
            self.pool.submit(self._send, lane, unit)
        for lane, items in moves:
            self._failover(lane, items, "circuit open")
        return wake

    def _refill(self) -> None:
        """Read spilled notifications back from the journal once their lane has room."""
        for lane in self.lanes.values():
            with self._lock:
                keys = [lane.spilled.popleft() for _ in range(lane.room())]
            if not keys:
                continue
            now = time.time()
            cancelled = []
            for key in keys:
                found = self.journal.query(kind="notification.queued", ref=key)
                if not found:
                    continue
                p = Pending.from_record(found[-1])
                with self._lock:
                    page = self.pages.get(p.page_id)
                    if page is not None and page.acked:
                        cancelled.append(self._book_final(lane, p, "cancelled", "acknowledged"))
                    else:
                        self._enqueue(p, now)
            self.journal.append(cancelled)

    # ---- acknowledgement ---------------------------------------------------------------------

    def _ack(self, alert_id: str, by: str, via: str) -> dict[str, Any]:
        """Acknowledge a page by its id or any of its alerts' ids; raises UnknownAlert."""
        with self._ack_lock:
            with self._lock:
                page = self.pages.get(self.alert_page.get(alert_id, alert_id))
                if page is None:
                    self.counts["ack_unknown"] += 1
                    raise UnknownAlert(alert_id)
                if page.acked:
                    return {**page.summary(), "already": True}
            now = time.time()
            rec = {
                "kind": "alert.acked",
                "actor": ACTOR,
                "key": via,
                "ref": page.page_id,
                "alert_ids": page.alert_ids,
                "by": by,
                "via": via,
                "ts": now,
                "after_s": round(now - page.started, 3),
            }
            self.journal.durable([rec])
            with self._lock:
                page.acked = rec
                self.counts["acked"] += 1
                cancelled = [p for lane in self.lanes.values() for p in lane.remove(page.page_id)]
                records = [
                    self._book_final(self.lanes[p.channel], p, "cancelled", "acknowledged")
                    for p in cancelled
                ]
            self._m_ack.observe(max(0.0, now - page.created_ts), tags={"actor": ACTOR, "via": via})
            self.journal.append(records)
            return {**page.summary(), "already": False, "cancelled": len(cancelled)}

    def _provider_status(self, key: str, params: dict[str, str]) -> bool:
        with self._lock:
            known = key in self.outcomes or key in self.items
            outcome = self.outcomes.get(key) or {}
        if not known:
            self.counts["status_unknown"] += 1
            return False
        status = params.get("MessageStatus") or params.get("CallStatus") or "?"
        sid = params.get("MessageSid") or params.get("CallSid")
        channel = outcome.get("channel", "")
        self.counts[f"status_{status}"] += 1
        if status in ("delivered", "completed"):
            self._tick(channel, "confirmed")
        self.journal.append(
            [
                {
                    "kind": "notification.status",
                    "actor": ACTOR,
                    "key": channel,
                    "ref": key,
                    "status": status,
                    "sid": sid,
                    "error_code": params.get("ErrorCode"),
                }
            ]
        )
        return True


class _Backend:
    """What the operator endpoint calls: the core, as the HTTP layer expects it."""

    def __init__(self, core: NotifierCore) -> None:
        self.core = core

    def ack(self, alert_id: str, by: str, via: str) -> dict[str, Any]:
        return self.core._ack(alert_id, by, via)

    def list_alerts(self, state: str) -> list[dict[str, Any]]:
        return self.core.alerts(state)

    def provider_status(self, key: str, params: dict[str, str]) -> bool:
        return self.core._provider_status(key, params)


class NotifierReads:
    """Read-side and test helpers of the actor (mixed into the Ray class)."""

    def alerts(self: Any, state: str = "all") -> list[dict[str, Any]]:
        with self._lock:
            pages = list(self.pages.values())
        rows = [p.summary() for p in pages]
        if state != "all":
            rows = [r for r in rows if r["state"] == state]
        return sorted(rows, key=lambda r: r["started"])

    def stats(self: Any) -> dict[str, Any]:
        with self._lock:
            return {
                **dict(self.counts),
                "channels": list(self.lanes),
                "per_channel": dict(self.per_channel),
                "queue_depth": {n: lane.depth() for n, lane in self.lanes.items()},
                "in_flight": {n: lane.in_flight for n, lane in self.lanes.items()},
                "breakers": {n: lane.breaker.state for n, lane in self.lanes.items()},
                "pages": len(self.pages),
                "open_pages": sum(1 for p in self.pages.values() if not p.acked),
                "alert_to_first_delivery_ms": self.first_delivery.percentiles((50, 99)),
                "operator": self.operator.counts() if self.operator is not None else {},
            }

    def outcomes_for(self: Any, alert_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [o for o in self.outcomes.values() if alert_id in o.get("alert_ids", ())]

    def settled(self: Any) -> bool:
        with self._lock:
            busy = any(lane.busy() for lane in self.lanes.values())
            return not busy and not self._waiting and not self._opening

    def drain(self: Any, timeout: float = 30.0) -> bool:
        """Wait until every queued notification has an outcome, journaled (tests, shutdown).
        Steps of an escalation that are not due yet do not count."""
        deadline = time.monotonic() + timeout  # the wall clock may jump
        while time.monotonic() < deadline and not self.settled():
            time.sleep(0.05)
        self.journal.durable([])  # and every outcome is in the journal file
        return self.settled()
