"""How late the feed's prices reach its subscribers, and the `market.feed_lag` event.

Why the feed measures itself: a flood of frames once delayed a good price to the shards by
163.8 s with no alarm — `feed_silent` cannot fire while frames arrive, and a price that is
late looks like a price. Every flush the feed takes the age of the oldest price not yet sent
to each subscriber (arrival on the socket to now, less the subscriber's own cadence, so a book
that wants an update a second is not "late"), and the age of the oldest frame received but
not yet folded; the worst of them is the feed's lag (gauge `feed_lag_seconds`, `stats()`
`lag_ms`). Past `market.lag_bound_ms` one `market.feed_lag` event is raised for the episode;
it re-arms when the lag is back under half the bound (hysteresis, like every market rule).
"""

from __future__ import annotations

import time
from typing import Any

from rules.model import RiskEvent

REARM_FRACTION = 0.5


class LagMonitor:
    """Hysteresis over the feed's lag: one event per episode above the bound."""

    def __init__(self, bound_s: float) -> None:
        self.bound_s = bound_s
        self.armed = True
        self.episode = 0
        self.lag_s = 0.0  # latest
        self.worst_s = 0.0  # since start

    def observe(self, lag_s: float) -> bool:
        """Record one flush's lag; True when it starts an episode above the bound."""
        self.lag_s = lag_s
        self.worst_s = max(self.worst_s, lag_s)
        if self.armed and lag_s > self.bound_s:
            self.armed = False
            self.episode += 1
            return True
        if not self.armed and lag_s < self.bound_s * REARM_FRACTION:
            self.armed = True
        return False

    def event(self, feed: str, oldest_arrival: float, attrs: dict[str, Any]) -> RiskEvent:
        """The market event of the episode that just started."""
        return RiskEvent(
            rule_id="market.feed_lag",
            kind="market.feed_lag",
            key=feed,
            severity="warning",
            value=float(self.lag_s),
            threshold=float(self.bound_s),
            ts=time.time(),
            ingress_ts=float(oldest_arrival),
            episode=self.episode,
            dimension="market",
            attributes={"feed": feed, "lag_ms": round(self.lag_s * 1000, 1),
                        "bound_ms": round(self.bound_s * 1000, 1), **attrs},
        )  # fmt: skip
