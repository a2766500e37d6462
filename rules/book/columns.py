"""The book's columns, its account policy, its contract index and its input checks.

Shared by the modules of rules.book (marking, settlement, orders, views); pure.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from rules.account_math import COST_CONVENTIONS, MARGIN_PRICE_TYPES
from rules.contracts import ContractTable, limit_prices
from rules.margin import SINGLE_SIDE, SINGLE_SIDE_MODES, group_name

ACCOUNT_COLUMNS = (
    "pre_balance",
    "deposit",
    "withdraw",
    "close_profit",
    "commission",
    "frozen_margin",
    "frozen_commission",
    "margin_markup",
)
POSITION_COLUMNS = (
    "volume",
    "today_volume",
    "open_price",  # average open price of every lot held (逐笔 cost, "average" margin price)
    "today_open_price",  # average open price of today's lots (逐日盯市 cost of today's lots)
    "sign",
    "multiplier",
    "margin_rate",  # the exchange's rate; the broker's adds the account's markup
)
FACTORS = ("units", "abs_units", "cost_value", "margin_units", "fixed_margin",
           "ex_margin_units", "ex_fixed_margin")  # fmt: skip
# Per position, as of the last mark. "margin" / "exchange_margin" are the position's own
# (both sides counted); "charged" / "ex_charged" say whether single-side margin charges it.
SUMS = ("profit", "margin", "exchange_margin", "notional", "margin_sensitivity")
VALUES = (*SUMS, "raw_sensitivity", "charged", "ex_charged", "locked")


class BookError(ValueError):
    """An event the book cannot apply (unknown account, closing more than is held, ...)."""


@dataclass(frozen=True, slots=True)
class AccountPolicy:
    """How a group of accounts is marked: which accounts (`match`, a glob on the group path),
    the cost convention, CTP's margin price type, the broker's markup over the exchange rate,
    single-side margin ("exchange": each exchange's rule, rules/margin.py; "off": both sides)
    and the broker's commission as a multiple of the exchange fees."""

    match: str = "*"
    cost: str = "by_date"
    margin_price: str = "last"
    markup: float = 0.0
    single_side: str = "exchange"
    fee_multiplier: float = 1.0

    def __post_init__(self) -> None:
        if self.cost not in COST_CONVENTIONS:
            raise ValueError(f"policy {self.match!r}: cost must be one of {COST_CONVENTIONS}")
        if self.margin_price not in MARGIN_PRICE_TYPES:
            raise ValueError(
                f"policy {self.match!r}: margin_price must be one of {MARGIN_PRICE_TYPES}"
            )
        if not 0 <= self.markup < 1:
            raise ValueError(f"policy {self.match!r}: markup must be in [0, 1)")
        if self.single_side not in SINGLE_SIDE_MODES:
            raise ValueError(
                f"policy {self.match!r}: single_side must be one of {SINGLE_SIDE_MODES}"
            )
        if not (isinstance(self.fee_multiplier, int | float) and 0 <= self.fee_multiplier < 1e6):
            raise ValueError(f"policy {self.match!r}: fee_multiplier must be a number ≥ 0")


def grow(arr: np.ndarray, n: int) -> np.ndarray:
    if n <= arr.shape[0]:
        return arr
    new = np.zeros(max(n, 2 * arr.shape[0], 64), dtype=arr.dtype)
    new[: arr.shape[0]] = arr
    return new


class ContractIndex:
    """Instruments this book has seen (held or priced), each with a row for prices and specs.

    `n_positions` counts position rows per contract, so a price of a contract nobody holds
    is stored without re-marking anyone. `group` is the single-side netting group's id
    (rules.margin.group_name) and `single_side` whether its exchange nets two-way positions.
    """

    def __init__(self, table: ContractTable) -> None:
        self.table = table
        self.index: dict[str, int] = {}
        self.names: list[str] = []
        self.last = np.zeros(0)
        self.pre_settlement = np.zeros(0)
        self.upper_limit = np.zeros(0)
        self.lower_limit = np.zeros(0)
        self.n_positions = np.zeros(0, dtype=np.int64)
        self.group = np.zeros(0, dtype=np.int64)
        self.single_side = np.zeros(0, dtype=bool)
        self.group_ids: dict[str, int] = {}
        self.commodity: list[str] = []
        self.specs: list = []
        self.not_in_table: set[str] = set()  # names priced but unknown to the table
        self.skipped_prices = 0

    def row(self, instrument: str) -> int:
        """Row of an instrument, registering it on first sight (UnknownContract if no spec)."""
        row = self.index.get(instrument)
        if row is not None:
            return row
        spec = self.table.spec(instrument)
        row = len(self.names)
        for name in ("last", "pre_settlement", "upper_limit", "lower_limit"):
            arr = grow(getattr(self, name), row + 1)
            arr[row] = np.nan
            setattr(self, name, arr)
        for name in ("n_positions", "group", "single_side"):
            setattr(self, name, grow(getattr(self, name), row + 1))
        self.group[row] = self.group_ids.setdefault(group_name(spec), len(self.group_ids))
        self.single_side[row] = SINGLE_SIDE.get(spec.exchange, False)
        self.index[instrument] = row
        self.names.append(instrument)
        self.commodity.append(spec.commodity)
        self.specs.append(spec)
        return row

    def known_row(self, instrument: str) -> int | None:
        """Row of a priced instrument, registered if the table knows it; None (counted) if not."""
        row = self.index.get(instrument)
        if row is not None:
            return row
        if instrument in self.not_in_table:
            self.skipped_prices += 1
            return None
        if not isinstance(instrument, str) or instrument not in self.table:
            self.not_in_table.add(instrument)
            self.skipped_prices += 1
            return None
        return self.row(instrument)

    def new_day_limits(self, rows: np.ndarray, settlement: np.ndarray) -> None:
        """Limits of the next trading day from its previous settlement (the feed may correct)."""
        for r, price in zip(rows.tolist(), settlement.tolist(), strict=True):
            spec = self.specs[r]
            upper, lower = limit_prices(price, spec.limit_rate, spec.tick_size)
            self.upper_limit[r], self.lower_limit[r] = float(upper), float(lower)

    def __len__(self) -> int:
        return len(self.names)


def deep_size(obj: Any) -> int:
    """Bytes of a dict/list of small keys (ids, tuples): the Python side of the state."""
    size = sys.getsizeof(obj)
    items = obj.items() if isinstance(obj, dict) else enumerate(obj)
    for key, value in items:
        size += sys.getsizeof(key) if isinstance(obj, dict) else 0
        size += sys.getsizeof(value) if not isinstance(value, list) else deep_size(value)
    return size


def number(value: Any, name: str, account_id: Any) -> float:
    """A finite number (zero and negative are numbers), else a BookError naming the field."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise BookError(f"{account_id}: {name} {value!r} is not a number") from None
    if not np.isfinite(out):
        raise BookError(f"{account_id}: {name} is {out}")
    return out


def required(rec: Any, name: str, kind: str) -> Any:
    """A required field of a record, or a BookError naming it."""
    try:
        return rec[name]
    except (KeyError, TypeError):
        raise BookError(f"{kind} record misses required field {name!r}") from None


def sign_of(direction: Any) -> int:
    text = getattr(direction, "value", direction)
    if text in ("long", "buy", 1, "1"):
        return 1
    if text in ("short", "sell", -1, "-1"):
        return -1
    raise BookError(f"direction must be long or short, got {direction!r}")
