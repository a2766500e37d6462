"""The one `Context` of a running system: contracts, session calendar (with the holidays), clock.

Built once by the supervisor from the config and handed to every actor, so no actor rebuilds
its own contract table or calendar — five places did, and the shard's calendar left out the
holiday file that the feed and the books loaded (a holiday looked like a trading day to the
shard's session-scoped rules). Ray pickles it into each actor's constructor, so a restarted
actor gets the same context back.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from infra.holidays import load_holidays
from infra.specs import load_contract_table
from rules.contracts import ContractTable
from rules.sessions import SessionCalendar

if TYPE_CHECKING:  # only named in hints: an actor that unpickles a Context needs no config
    # package (infra.config and the rule kinds it loads cost ~0.25 s in each actor's process)
    from infra.config import Config, MarketConfig


@dataclass(frozen=True)
class Context:
    """Shared, read-only: what every actor of one system must agree on."""

    contracts: ContractTable
    calendar: SessionCalendar  # sessions per product plus the exchange holidays
    clock_shift_s: float = 0.0  # session clock = wall clock + shift (demo: a chosen session time)

    def now(self) -> float:
        """The session clock (epoch seconds)."""
        return time.time() + self.clock_shift_s

    @classmethod
    def build(cls, cfg: Config) -> Context:
        """From the config: contract overrides, `market.holidays_file`, `session_clock_start`."""
        return cls.of_market(cfg.market, cfg.contracts_overrides)

    @classmethod
    def of_market(cls, market: MarketConfig, contracts_overrides: Sequence[str] = ()) -> Context:
        """From the `[market]` part of a config: its holiday file and session clock start."""
        start = market.session_clock_start
        shift = datetime.fromisoformat(start).timestamp() - time.time() if start else 0.0
        return cls.of(contracts_overrides, market.holidays_file, shift)

    @classmethod
    def of(
        cls, contracts_overrides: Sequence[str] = (), holidays_file: str = "", shift: float = 0.0
    ) -> Context:
        """From the parts (tools and tests that start one actor without a config)."""
        table = load_contract_table(tuple(contracts_overrides))
        holidays = load_holidays(holidays_file) if holidays_file else ()
        return cls(table, SessionCalendar.from_table(table, holidays), shift)
