"""Primary and backup feeds of the same contracts: de-duplicated, with per-contract takeover.

Design. Each configured endpoint gets its own MarketFeed actor (`role = "primary"` or
`"backup"`, the backup naming its primary). Both receive and fold every tick, so the backup's
statistics are warm when it is needed. What is de-duplicated is what leaves the feeds: each
contract has exactly one *owner* at a time, and only the owner pushes its prices to the shards
and books and raises its market events. The primary owns all its contracts; the backup starts
owning none.

Every `check_ms` the backup asks its primary (`MarketFeed.freshness`, one small call, never
waited on) when each contract last ticked there. A contract whose primary tick is older than
`takeover_s` while the backup has a fresher one is taken over (one `market.feed_takeover`
event per takeover round, naming the contracts); it is handed back as soon as the primary has
ticked it within `takeover_s / 2`. A primary that does not answer within `takeover_s` (dead,
restarting, wedged) counts as stale on everything. Ownership is per contract, so a primary that
lost part of its subscription hands over exactly that part.

The price of this design is one poll per check interval and, around a hand-back, at most one
check interval in which both feeds may push the same contract (the latest price wins at the
subscribers either way); the gain is that neither shards nor books know feeds are redundant.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import ray

from rules.engine.spec import RuleSpec
from rules.model import RiskEvent

MAX_NAMED = 20  # instruments listed in a takeover event


def feed_event(
    rule: RuleSpec, key: str, value: float, episode: int, ingress: float, attrs: dict[str, Any]
) -> RiskEvent:
    """A market-dimension RiskEvent of a rule."""
    return RiskEvent(
        rule_id=rule.id,
        kind=f"market.{rule.kind}",
        key=key,
        severity=rule.severity,
        value=float(value),
        threshold=float(rule.threshold),
        ts=time.time(),
        ingress_ts=ingress,
        episode=int(episode),
        dimension="market",
        attributes=attrs,
    )


class BackupRole:
    """The backup side: polls the primary and moves ownership of contracts (see module doc)."""

    def __init__(self, primary: Any, takeover_s: float) -> None:
        self.primary = primary
        self.takeover_s = takeover_s
        self.primary_names: list[str] = []
        self.primary_index: dict[str, int] = {}
        self.primary_last: np.ndarray | None = None  # None: no answer yet
        self.unreachable = False
        self._ref: ray.ObjectRef | None = None
        self._sent = 0.0
        self.takeovers = 0
        self.taken = 0
        self.handed_back = 0
        self.poll_errors = 0

    def _collect(self, now: float) -> None:
        if self._ref is not None:
            ready, _ = ray.wait([self._ref], timeout=0)
            if ready:
                self._ref = None
                try:
                    answer = ray.get(ready[0])
                except Exception:  # the primary failed the call: dead or restarting
                    self.poll_errors += 1
                    self.unreachable = True
                else:
                    for name in answer["names"]:
                        self.primary_index[name] = len(self.primary_names)
                        self.primary_names.append(name)
                    self.primary_last = np.asarray(answer["last_arrival"], dtype=float)
                    self.unreachable = False
            elif now - self._sent > self.takeover_s:
                self._ref = None  # no answer in time: treat the primary as gone
                self.unreachable = True
        if self._ref is None and self.primary is not None:
            self._ref = self.primary.freshness.remote(len(self.primary_names))
            self._sent = now
        elif self.primary is None:
            self.unreachable = True

    def poll(self, feed: Any, now: float) -> list[RiskEvent]:
        """Update `feed.owned`; returns a takeover event when contracts were taken over."""
        self._collect(now)
        n = len(feed.names)
        if n == 0 or (self.primary_last is None and not self.unreachable):
            return []  # the primary has not answered yet: nothing to judge by
        # A contract the primary has not seen counts from when the backup first saw it, so a
        # primary that is merely slower to receive a new contract is not judged stale at once.
        primary_last = feed.first_arrival[:n].copy()
        if self.unreachable:
            primary_last[:] = -np.inf
        else:
            assert self.primary_last is not None
            pos = np.array([self.primary_index.get(name, -1) for name in feed.names])
            seen = (pos >= 0) & (pos < self.primary_last.shape[0])
            primary_last[seen] = np.nan_to_num(self.primary_last[pos[seen]], nan=-np.inf)
        primary_age = now - primary_last
        backup_age = now - np.nan_to_num(feed.arrival_last[:n], nan=-np.inf)
        owned = feed.owned[:n]
        take = ~owned & (primary_age > self.takeover_s) & (backup_age < primary_age)
        give = owned & (primary_age < self.takeover_s / 2)
        rows_take, rows_give = np.flatnonzero(take), np.flatnonzero(give)
        feed.owned[rows_take] = True
        feed.owned[rows_give] = False
        self.handed_back += int(rows_give.size)
        if rows_take.size == 0:
            return []
        for sub in feed.subscribers:  # push what the backup has for them at the next flush
            sub.pending[rows_take] = True
            sub.arrival[rows_take] = feed.arrival_last[rows_take]
        self.takeovers += 1
        self.taken += int(rows_take.size)
        names = [feed.names[r] for r in rows_take[:MAX_NAMED].tolist()]
        reason = "primary not answering" if self.unreachable else "primary stale"
        return [
            RiskEvent(
                rule_id="market.feed_takeover",
                kind="market.feed_takeover",
                key=feed.name,
                severity="warning",
                value=float(rows_take.size),
                threshold=float(self.takeover_s),
                ts=time.time(),
                ingress_ts=now,
                episode=self.takeovers,
                dimension="market",
                attributes={"feed": feed.name, "reason": reason, "instruments": names},
            )
        ]
