"""Domain model: the nouns every layer speaks.

Hot data (ticks, prices, account figures) is columnar numpy so one message carries thousands of
rows; cold data (events, alerts, proposals, orders, fills) is small frozen records that travel in
lists and land one row each in the audit journal.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

import numpy as np

SEVERITIES = ("info", "warning", "critical", "emergency")


def severity_rank(severity: str) -> int:
    """Order of severities, so inhibition can say 'a higher one silences a lower one'."""
    return SEVERITIES.index(severity)


def stable_id(*parts: object, length: int = 16) -> str:
    """Deterministic id from its parts: a retry of the same thing gets the same id."""
    digest = hashlib.sha1("|".join(str(_plain(p)) for p in parts).encode()).hexdigest()
    return digest[:length]


def _plain(part: object) -> object:
    """numpy scalars and str subclasses as the plain Python value: `str(('r', np.str_('x')))`
    is not `str(('r', 'x'))`, and an id must not depend on where a name came from."""
    if isinstance(part, str):
        return str.__str__(part)
    if isinstance(part, tuple | list):
        return type(part)(_plain(p) for p in part)
    item = getattr(part, "item", None)  # numpy scalar (rules/ stays free of a numpy import here)
    if item is not None and callable(item) and not hasattr(part, "__len__"):
        return item()
    return part


@dataclass(slots=True)
class TickBatch:
    """Level-1 snapshots of many instruments, one array per field.

    `instrument_idx` indexes `instruments`, the names used in this batch; that keeps strings off
    the hot path (names are looked up once per batch, not once per tick).
    """

    instruments: list[str]
    instrument_idx: np.ndarray  # uint32, per tick
    last: np.ndarray  # float64
    volume: np.ndarray  # float64, cumulative for the day
    open_interest: np.ndarray  # float64
    bid: np.ndarray  # float64
    ask: np.ndarray  # float64
    exchange_ts: np.ndarray  # float64 epoch seconds of the exchange update time
    upper_limit: np.ndarray  # float64, nan when the source does not carry it
    lower_limit: np.ndarray  # float64
    pre_settlement: np.ndarray  # float64
    sent_ts: float = 0.0  # when the publisher sent the frame (epoch seconds)

    def __len__(self) -> int:
        return int(self.last.shape[0])

    def names(self) -> list[str]:
        """Instrument name per tick (slow path: tests and tools only)."""
        return [self.instruments[i] for i in self.instrument_idx]


PRICE_FIELDS = ("last", "upper_limit", "lower_limit", "pre_settlement")


@dataclass(slots=True)
class PriceUpdate:
    """What a MarketFeed pushes to shards and books each flush: latest price per changed contract.

    `arrival_ts` is, per instrument, when the earliest tick coalesced into this update entered
    the system; latency from tick to alert is measured against it.
    """

    instruments: list[str]
    last: np.ndarray
    upper_limit: np.ndarray
    lower_limit: np.ndarray
    pre_settlement: np.ndarray
    arrival_ts: np.ndarray
    seq: int = 0
    feed: str = ""
    open_interest: np.ndarray | None = None  # lets books pick the main (most held) contract


class Direction(str, Enum):
    LONG = "long"
    SHORT = "short"

    @property
    def sign(self) -> int:
        return 1 if self is Direction.LONG else -1


class Offset(str, Enum):
    OPEN = "open"
    CLOSE = "close"
    CLOSE_TODAY = "close_today"


@dataclass(slots=True)
class Position:
    """One side of one contract in one account (CTP keeps long and short apart)."""

    account_id: str
    instrument: str
    direction: Direction
    volume: float
    cost_price: float  # open price (逐笔) or previous settlement (逐日盯市)
    today_volume: float = 0.0


@dataclass(slots=True)
class Account:
    """Static figures of one account; the moving ones are derived by marking to market."""

    account_id: str
    pre_balance: float
    group_path: str = ""  # "group/subsidiary/unit"
    deposit: float = 0.0
    withdraw: float = 0.0
    close_profit: float = 0.0
    commission: float = 0.0
    frozen_margin: float = 0.0
    frozen_commission: float = 0.0
    margin_markup: float = 0.0  # broker's markup over the exchange margin rate


@dataclass(frozen=True, slots=True)
class RiskEvent:
    """Something a rule saw: the correlator turns these into alerts.

    `episode` numbers the times this rule fired for this key, so an alert id derived from
    (rule, key, episode) is the same on a retry and new on the next genuine crossing.
    """

    rule_id: str
    kind: str  # e.g. "account.risk_degree"
    key: str  # what it is about: account id, contract, commodity, feed
    severity: str
    value: float
    threshold: float
    ts: float  # when the rule fired
    ingress_ts: float  # when the data behind it entered the system
    episode: int = 0
    dimension: str = "account"
    attributes: dict[str, Any] = field(default_factory=dict)
    action: dict[str, Any] | None = None  # proposed action, e.g. {"kind": "reduce", "target": 0.8}

    def to_record(self) -> dict[str, Any]:
        # Shallow on purpose: asdict() deep-copies, and events come by the thousand in a shock.
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(frozen=True, slots=True)
class Alert:
    alert_id: str
    rule_id: str
    key: str
    severity: str
    title: str
    value: float
    threshold: float
    created_ts: float
    ingress_ts: float
    dimension: str = "account"
    attributes: dict[str, Any] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


class ProposalState(str, Enum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXECUTING = "executing"
    DONE = "done"  # executed and verified: orders filled (or the deposit came) and target met
    FAILED = "failed"
    MOOT = "moot"  # the account no longer breached when it would act: nothing was done


@dataclass(slots=True)
class ActionProposal:
    """An action an alert proposes; nothing is executed before it is approved."""

    proposal_id: str
    alert_id: str
    account_id: str
    kind: str  # reduce / liquidate / margin_call / freeze
    target_risk_degree: float
    created_ts: float
    state: ProposalState = ProposalState.PENDING
    reason: str = ""
    decided_by: str = ""
    decided_ts: float = 0.0

    def to_record(self) -> dict[str, Any]:
        record = asdict(self)
        record["state"] = self.state.value
        return record


@dataclass(frozen=True, slots=True)
class Order:
    """An order with CTP-style fields; `order_ref` comes from (proposal, leg) so retries dedupe."""

    order_ref: str
    proposal_id: str
    account_id: str
    instrument: str
    direction: Direction  # direction of the order: SHORT sells to close a long
    offset: Offset
    volume: float
    limit_price: float
    created_ts: float

    def to_record(self) -> dict[str, Any]:
        record = asdict(self)
        record["direction"] = self.direction.value
        record["offset"] = self.offset.value
        return record


@dataclass(frozen=True, slots=True)
class Fill:
    order_ref: str
    account_id: str
    instrument: str
    direction: Direction
    offset: Offset
    volume: float
    price: float
    ts: float
    trade_id: str = ""

    def to_record(self) -> dict[str, Any]:
        record = asdict(self)
        record["direction"] = self.direction.value
        record["offset"] = self.offset.value
        return record
