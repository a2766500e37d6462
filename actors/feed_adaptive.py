"""What a MarketFeed's adaptive market rules learned (vol_scaled_move: each contract's own
volatility) is part of its recoverable state: journaled as a typed `adaptive.state` record on a
cadence and on request, and taken back by a feed that starts recovering (the rules bundle's
`context.recover`, as `fengkong run` sets it). A contract takes its baseline back when it first
ticks after the restart (rules.engine.kinds.market_set.MarketRuleSet.restore_adaptive).

A mixin so market_feed.py keeps to ticks and fan-out: needs `self.rules`, `self._lock`,
`self.name`, `self.counts`.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import ray

from rules.engine.kinds.market import ADAPTIVE_KINDS
from rules.journal_records import AdaptiveState

log = logging.getLogger(__name__)
ADAPTIVE_SNAPSHOT_S = 60.0


class FeedAdaptive:
    def _init_adaptive(self, audit: Any, rules: Any) -> None:
        self.audit = audit
        self._adaptive_saved = time.monotonic()
        context = (rules or {}).get("context") or {} if isinstance(rules, dict) else {}
        if audit is not None and context.get("recover", False):
            try:
                found = ray.get(audit.query.remote(kind=AdaptiveState.KIND, key=self._actor_key),
                                timeout=30.0)  # fmt: skip
            except Exception as exc:  # no journal: the baselines learn afresh
                log.warning("market baselines not recovered: %s", exc)
                return
            if found:
                last = AdaptiveState.from_record(found[-1])
                self.counts["adaptive_restored"] = len(
                    self.rules.restore_adaptive(last.market_rules)
                )

    @property
    def _actor_key(self) -> str:
        return f"MarketFeed.{self.name}"

    def adaptive_snapshot(self) -> dict[str, Any]:
        """The adaptive market rules' baselines by instrument (an AdaptiveState record)."""
        with self._lock:
            state = self.rules.adaptive_state()
        return AdaptiveState(actor=self._actor_key, key=self._actor_key, ts=time.time(),
                             market_rules=state).to_record()  # fmt: skip

    def save_adaptive(self) -> int:
        """Journal the baselines now; returns the records sent (0: none to keep or no journal)."""
        if self.audit is None or not any(r.kind in ADAPTIVE_KINDS for r in self.rules.rules):
            return 0
        ray.get(self.audit.append.remote([self.adaptive_snapshot()]), timeout=30.0)
        self.counts["adaptive_snapshots"] += 1
        return 1

    def _maybe_save_adaptive(self) -> None:
        if self.audit is None or time.monotonic() - self._adaptive_saved < ADAPTIVE_SNAPSHOT_S:
            return
        self._adaptive_saved = time.monotonic()
        if any(r.kind in ADAPTIVE_KINDS for r in self.rules.rules):
            self.audit.append.remote([self.adaptive_snapshot()])  # fire and forget: a cadence
            self.counts["adaptive_snapshots"] += 1
