"""The checks of a MarketFeed, every `check_ms`: backup takeover, whole-feed silence, then
per-contract staleness (a live contract silent for longer than its threshold within its
session). A silent feed raises one alert, which then stands in for the per-contract alerts.
"""

from __future__ import annotations

import time

import numpy as np

from actors.feed_group import feed_event
from rules.engine.kinds.market_set import Fired
from rules.model import RiskEvent


class FeedChecks:
    """Mixin: needs the feed's columns, `rules`, `silence`, `backup`, `calendar`, `shift`,
    `started`, `last_frame`, `_lock`, the shell's `counts` and the ingest's `_queue`."""

    def check(self) -> None:
        """Backup takeover, whole-feed silence, then per-contract staleness."""
        now = time.time()
        events: list[RiskEvent] = []
        self.counts["checks"] += 1
        with self._lock:
            n = len(self.names)
            if self.backup is not None:
                events += self.backup.poll(self, now)
            inside, start, previous, _bits = self.calendar.template_states(now + self.shift)
            tmpl = self.template[:n]
            in_session = inside[tmpl]
            with np.errstate(invalid="ignore"):
                live = self.arrival_last[:n] >= previous[tmpl] - self.shift
            watched = bool((in_session & live).any()) if n else bool(inside.any())
            if self.silence is not None:
                silent_for = now - (self.last_frame or self.started)
                if self.silence.check(silent_for, watched):
                    events.append(self._silence_event(silent_for, now, n))
                if not self.silence.armed:  # one alert for the feed stands for its contracts
                    self._queue(events)
                    return
            eligible = in_session & live & self.owned[:n]
            for i in self.rules.of_kind("stale"):
                rule = self.rules.rules[i]
                rows = np.flatnonzero(eligible & self.rules.applies(i)[:n])
                if rows.size == 0:
                    continue
                since = np.fmax(self.arrival_last[rows], start[tmpl[rows]] - self.shift)
                age = now - since
                own = self.stale_s[rows]
                scale = np.where(np.isnan(own), 1.0, rule.threshold / own)
                fired = self.rules.on_values(i, rows, age, scale)
                if fired is not None:
                    events += self._stale_events(fired, now)
            self._queue(events)

    def _stale_events(self, fired: Fired, now: float) -> list[RiskEvent]:
        out = []
        for row, value, episode in zip(
            fired.rows.tolist(), fired.values.tolist(), fired.episodes.tolist(), strict=True
        ):
            own = self.stale_s[row]
            attrs = {
                "feed": self.name,
                "product": self.products[row],
                "last_tick_ts": float(self.arrival_last[row]),
                "threshold_s": float(own) if np.isfinite(own) else fired.rule.threshold,
            }
            out.append(feed_event(fired.rule, self.names[row], value, episode, now, attrs))
        return out

    def _silence_event(self, silent_for: float, now: float, n: int) -> RiskEvent:
        assert self.silence is not None
        attrs = {
            "feed": self.name,
            "endpoint": self.endpoint,
            "role": self.role,
            "contracts": n,
            "last_frame_ts": self.last_frame or None,
        }
        return feed_event(
            self.silence.rule, self.name, silent_for, self.silence.episode, now, attrs
        )
