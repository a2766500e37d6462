"""Notifier actor: a thin shell over the notification machine (rules/notify/).

It receives (alerts, acks, provider callbacks, answers of its own posts), applies each to the
machine under one lock, writes the journal entries the effects name — durable ones before
anything acts on them (the outbox) — and then performs the posts on worker threads, feeding
every answer back through the same `apply`. A restart replays the journal through `apply` too.

`drain` is true only when nothing is owed: every queued notification has its final outcome booked
(delivered means the provider answered, i.e. stored it), no post is in flight, no effect is still
being performed, and the journal holds all of it.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import ray

from actors.common import ACTOR_OPTIONS
from actors.notify import wiring
from actors.notify.journal import Journal
from actors.shell import ActorShell
from infra.config import NotifierConfig
from infra.stats import LatencyRing
from rules.model import Alert
from rules.notify import machine
from rules.notify.inputs import (
    ACCEPTED,
    UNCERTAIN,
    Ack,
    AlertsIn,
    Effects,
    Journaled,
    Loaded,
    ProviderStatus,
    Replay,
    Result,
    Send,
    Tick,
)
from rules.notify.outbox import RESUME_KINDS
from rules.notify.routing import build_routing

log = logging.getLogger(__name__)
__all__ = ["Notifier"]


@ray.remote(**{**ACTOR_OPTIONS, "max_concurrency": 16})
class Notifier(ActorShell):
    """Threaded (max_concurrency) so an acknowledgement is answered while a `drain` waits."""

    def __init__(
        self,
        channels: list[dict[str, Any]],
        audit: Any = None,
        settings: NotifierConfig | None = None,
        console_url: str = "",
    ) -> None:
        """`console_url`: the console's public URL ([console] public_url, or its host and
        port), where pages link to, reply links acknowledge and Twilio calls back."""
        super().__init__("Notifier")
        self.s = s = settings or NotifierConfig()
        if s.group_wait_s != NotifierConfig.group_wait_s:
            log.warning(
                "notifier.group_wait_s is deprecated and ignored: alerts are grouped "
                "once, by the rule set's [hygiene] group stage"
            )
        self.journal = Journal(audit)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._kick = threading.Event()
        self._performing = 0  # effects applied whose journal part is not done yet
        self.metrics = wiring.NotifyMetrics()
        self.console_url = console_url.rstrip("/")
        self.channels, specs = wiring.build_channels(channels, s, self.console_url or None)
        links_on = s.operator.enabled and self.journal.enabled
        self._link = wiring.signer(
            self.console_url, self.journal.received if links_on else None, s.operator.link_ttl_s
        )
        routing = build_routing(s, list(self.channels))
        self.state = machine.new_state(
            wiring.machine_settings(s, self.console_url), specs, routing, spill=self.journal.enabled
        )
        # Channels without provider-side dedup (rules.notify.model.NON_IDEMPOTENT): their posts
        # are bracketed by `sending` and the answer in the journal, and the window is measured.
        self._unbracketed = {n for n, lane in self.state.lanes.items() if not lane.spec.idempotent}
        self.residual_window = LatencyRing()
        self._m_window = self.metric(
            "histogram",
            "notify_residual_window_ms",
            "provider accept to the journal's commit of it (posts without provider dedup)",
            boundaries=[1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
            tag_keys=("channel",),
        )
        self.pool = ThreadPoolExecutor(max_workers=s.workers * max(1, len(specs)) + 2)
        if self.journal.enabled:
            self.journal.durable([])  # flush, so every record sent before is readable
            since = time.time() - s.resume_window_s
            self._apply(Replay({k: self.journal.query(kind=k, since=since) for k in RESUME_KINDS}))
        self._depth_at = 0.0
        # The timers: a failed step is counted (`scheduler_errors`, `last_error`), the next runs.
        self.every(0.0, self._scheduler_step, "scheduler")  # the step waits for its next timer

    # ---- messages ------------------------------------------------------------------------------

    def notify(self, alerts: list[Alert]) -> int:
        """Accept alerts (journaled before this returns), each group paged at once."""
        self._apply(AlertsIn(tuple(alerts)))
        return len(alerts)

    def ack(self, alert_id: str, by: str = "cli", via: str = "cli") -> dict[str, Any]:
        """Acknowledge an alert (or page) id; an unknown id answers {"error": "UNKNOWN_ALERT"}."""
        reply = self._apply(Ack(alert_id, by, via))
        if reply is None:
            return {"error": "UNKNOWN_ALERT", "detail": f"no alert {alert_id!r}"}
        return reply

    def provider_status(self, key: str, params: dict[str, str]) -> bool:
        return bool(self._apply(ProviderStatus(key, dict(params))))

    def alerts(self, state: str = "all") -> list[dict[str, Any]]:
        with self._lock:
            return machine.alerts(self.state, state)

    def outcomes_for(self, alert_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return machine.outcomes_for(self.state, alert_id)

    def figures(self) -> dict[str, Any]:
        with self._lock:
            out = machine.stats(self.state)
        return {
            **out,
            "alert_to_first_delivery_ms": self.metrics.first_delivery.percentiles((50, 99)),
            "residual_window_ms": self.residual_window.percentiles((50, 99, 100)),
            "residual_window_samples": self.residual_window.count,
        }

    def settled(self) -> bool:
        with self._lock:
            return self._settled()

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until every queued notification has a final outcome, journaled (tests,
        shutdown). Steps of an escalation that are not due yet do not count."""
        deadline = time.monotonic() + timeout  # the wall clock may jump
        while True:
            with self._changed:
                while not self._settled() and time.monotonic() < deadline:
                    self._changed.wait(min(0.25, max(0.0, deadline - time.monotonic())))
                if not self._settled():
                    return False
            self.journal.durable([])  # every outcome booked so far is in the journal file
            if self.settled():  # and nothing new started meanwhile (a callback, a retry)
                return True

    def endpoint(self) -> str:
        """The console URL its links and callbacks name ("" when none was given)."""
        return self.console_url

    # ---- apply and perform -----------------------------------------------------------------------

    def _settled(self) -> bool:  # under the lock
        return self.state.settled() and self._performing == 0

    def _apply(self, inp: Any, want: str = "reply") -> Any:
        """Apply one input and perform its effects; returns the effects' reply (or `want`)."""
        with self._lock:
            eff = machine.apply(self.state, inp, time.time())
            quiet = eff.empty()  # a timer step or a read: nothing to journal or send
            self._performing += not quiet
        if quiet:
            self.metrics.record(eff.metrics)
        else:
            self._perform(eff)
        return getattr(eff, want)

    def _perform(self, eff: Effects) -> None:
        """Journal first (each entry at its durability), then release, post and load."""
        try:
            for durability, records in eff.journal:  # the journal may be away: wait for it
                self._retrying(getattr(self.journal, durability), records)
            if eff.token is not None:
                self._apply(Journaled(eff.token))
            for send in eff.sends:
                self.pool.submit(self._send, send)
            for channel, keys in eff.loads:
                self.pool.submit(self._load, channel, keys)
            self.metrics.record(eff.metrics)
        finally:
            with self._changed:
                self._performing -= 1
                self._changed.notify_all()
            if eff.token is not None or eff.sends or eff.loads:
                self._kick.set()

    def _send(self, send: Send) -> None:
        note = wiring.notification(send.message, self._link, self.channels[send.channel])
        try:
            answer = wiring.result(send.try_id, self.channels[send.channel].send(note))
        except Exception as exc:  # a channel bug: the post may or may not have gone out
            answer = Result(send.try_id, UNCERTAIN, error=f"{type(exc).__name__}: {exc}")
        answered = time.perf_counter()
        self._apply(answer)  # books the answer: committed before this returns where it must be
        if answer.outcome == ACCEPTED and send.channel in self._unbracketed:
            # The residual window: the provider holds the message, the journal does not yet say
            # so; a crash now makes the restart send it again (docs/delivery.md).
            window_ms = (time.perf_counter() - answered) * 1000
            with self._lock:
                self.residual_window.add(window_ms)
            self._m_window.observe(window_ms, tags={"channel": send.channel})

    def _load(self, channel: str, keys: list[str]) -> None:
        found: list[tuple[str, dict[str, Any] | None]] = []

        def read() -> None:
            found[:] = [
                (k, (self.journal.query(kind="notification.queued", ref=k) or [None])[-1])
                for k in keys
            ]

        self._retrying(read)
        self._apply(Loaded(channel, tuple(found)))

    def _retrying(self, fn: Any, *args: Any) -> None:
        """Run fn until it succeeds: the journal may be unreachable for a while, and what the
        machine decided must not be lost (its keys stay open meanwhile, so drain waits). A
        write retried after a timeout may land twice; the resume arithmetic counts each key
        once."""
        while True:
            try:
                fn(*args)
                return
            except Exception:
                log.exception("notifier: booking failed; trying again in 1 s")
                time.sleep(1.0)

    def _scheduler_step(self) -> None:
        """Tick the machine's timers, then sleep until the next one is due (or a kick)."""
        self._kick.clear()
        wake = time.time() + 0.25  # after a failed step: the usual longest wait
        try:
            wake = self._apply(Tick(), want="wake")
        finally:  # a failed step still waits, so a persistent failure does not spin
            now = time.time()
            if now - self._depth_at >= 0.5:
                self._depth_at = now
                with self._lock:
                    depths = {n: lane.depth() for n, lane in self.state.lanes.items()}
                self.metrics.depths(depths)
            self._kick.wait(max(0.002, min(wake - time.time(), 0.25)))
