"""Contract specifications: what one lot of a futures product is worth and when it trades.

Every risk figure depends on them: margin and position profit scale with the multiplier, limit
prices come from the limit rate and the tick, and the session calendar decides when a price is
live. The table is data (validated here, loaded from TOML by ``infra.specs``) so that a user can
correct a figure from their broker's instrument table without touching code.

Pure: stdlib and numpy only, no file I/O.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

EXCHANGES: frozenset[str] = frozenset({"SHFE", "INE", "DCE", "CZCE", "CFFEX", "GFEX"})

_HHMM = re.compile(r"^(?:[01]\d|2[0-3]):[0-5]\d$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# Letters, then a 3-digit (CZCE: "SR601") or 4-digit ("rb2601") month, then an optional
# non-digit tail (an option's "C5600" or "-C-5600"). "rb", "rb26" and "SHFE.rb2601" fail.
_INSTRUMENT = re.compile(r"^([A-Za-z]+)(\d{3,4})(?:\D.*)?$")


@dataclass(frozen=True, slots=True)
class ContractSpec:
    """One futures product. Frozen so that actors can share a table without copying it.

    ``sessions`` are Beijing-time ("HH:MM", "HH:MM") pairs, the night session first (it
    belongs to the next trading day); a night session may end after midnight ("21:00", "01:00").
    ``margin_rate`` is the exchange's rate; a broker adds its markup on top. ``commodity`` names
    the exposure book the product's positions count towards (usually the product itself).
    """

    product: str
    exchange: str
    name: str
    multiplier: float
    tick_size: float
    margin_rate: float
    limit_rate: float
    sessions: tuple[tuple[str, str], ...]
    unit: str
    reference_price: float
    commodity: str
    # Exchange fees (手续费) per lot ("volume": yuan per lot) or per turnover ("turnover": a
    # fraction of price × volume × multiplier); open / close (yesterday's lots) / close-today.
    # A broker charges a multiple of these (the account policy's fee multiplier).
    fee_by: str = "volume"
    fee_open: float = 0.0
    fee_close: float = 0.0
    fee_close_today: float = 0.0
    # Products whose opposite positions are netted for single-side margin (单边大保证金);
    # empty means the product itself (CFFEX nets some products together, see rules/margin).
    margin_group: str = ""
    # The date (YYYY-MM-DD) of the public figures this record was taken from.
    as_of: str = ""

    @property
    def has_night_session(self) -> bool:
        """True when the first session starts in the evening (21:00 for every exchange today)."""
        return bool(self.sessions) and self.sessions[0][0] >= "18:00"


FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(ContractSpec))
# Optional keys: commodity defaults to the product, fees to none, margin_group to the product.
_OPTIONAL_FIELDS: frozenset[str] = frozenset(
    {"commodity", "fee_by", "fee_open", "fee_close", "fee_close_today", "margin_group", "as_of"}
)
FEE_BASES: tuple[str, ...] = ("volume", "turnover")


class UnknownContract(KeyError):
    """An instrument or product the table does not know. A KeyError, so ``in`` and ``.get``-style
    code treat it as a missing key, with a message that says what to do about it."""

    def __init__(self, instrument: str, reason: str | None = None) -> None:
        self.instrument = instrument
        detail = reason or "its product is not in the contract table"
        self.message = (
            f"unknown contract {instrument!r}: {detail} "
            "(add the product with a [[contract]] override record)"
        )
        super().__init__(self.message)

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.message


class ContractRecordError(ValueError):
    """A contract record that cannot become a ContractSpec; names the record, product and key."""

    def __init__(
        self,
        reason: str,
        *,
        product: str | None = None,
        key: str | None = None,
        index: int | None = None,
    ) -> None:
        self.reason, self.product, self.key, self.index = reason, product, key, index
        where = ["contract record" + (f" #{index + 1}" if index is not None else "")]
        if product is not None:
            where.append(f"product {product!r}")
        if key is not None:
            where.append(f"key {key!r}")
        super().__init__(f"{', '.join(where)}: {reason}")


def product_of(instrument: str) -> str:
    """The product code of an instrument id: "rb2601" -> "rb", "SR601" -> "SR", "IF2512" -> "IF".

    Case is kept: exchanges spell products differently (SHFE/DCE lower, CZCE/CFFEX upper).
    """
    if not isinstance(instrument, str):
        raise TypeError(f"instrument id must be a str, got {type(instrument).__name__}")
    match = _INSTRUMENT.match(instrument)
    if match is None:
        if not instrument[:1].isalpha():
            why = "it does not start with the product letters"
        elif not any(ch.isdigit() for ch in instrument):
            why = "it has no month part (a product code alone is not an instrument)"
        else:
            why = "expected product letters then a 3- or 4-digit month, e.g. 'rb2601' or 'SR601'"
        raise ValueError(f"not an instrument id: {instrument!r}: {why}")
    return match.group(1)


class ContractTable:
    """Validated ContractSpecs by product. Immutable: ``with_overrides`` returns a new table."""

    __slots__ = ("_specs", "_folded")

    def __init__(self, specs: Iterable[ContractSpec] = ()) -> None:
        self._specs: dict[str, ContractSpec] = {}
        for spec in specs:
            if spec.product in self._specs:
                raise ContractRecordError("duplicate product", product=spec.product)
            self._specs[spec.product] = spec
        # Case-insensitive fallback ("RB2601" from an upper-casing vendor), only where unambiguous.
        folded: dict[str, str | None] = {}
        for product in self._specs:
            key = product.lower()
            folded[key] = None if key in folded else product
        self._folded = {k: v for k, v in folded.items() if v is not None}

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]]) -> ContractTable:
        """Build a table from plain records (e.g. TOML tables), validating every field."""
        specs: list[ContractSpec] = []
        seen: set[str] = set()
        for index, record in enumerate(records):
            spec = spec_from_record(record, index=index)
            if spec.product in seen:
                raise ContractRecordError("duplicate product", product=spec.product, index=index)
            seen.add(spec.product)
            specs.append(spec)
        return cls(specs)

    def with_overrides(self, records: Iterable[Mapping[str, Any]]) -> ContractTable:
        """A new table with records applied by product; a record for a known product only needs
        "product" plus the keys it changes, a record for a new product needs every key."""
        specs = dict(self._specs)
        for index, record in enumerate(records):
            product = _record_product(record, index)
            base = specs.get(product)
            if base is None:
                merged: Mapping[str, Any] = record
            else:
                merged = {**spec_to_record(base), **record}
            specs[product] = spec_from_record(merged, index=index, new=base is None)
        return ContractTable(specs.values())

    def spec(self, instrument_or_product: str) -> ContractSpec:
        """The spec of a product ("rb") or of an instrument of it ("rb2601")."""
        key = instrument_or_product
        if not isinstance(key, str):
            raise UnknownContract(repr(key), "an instrument id is a str")
        found = self._specs.get(key) or self._specs.get(self._folded.get(key.lower(), ""))
        if found is not None:
            return found
        try:
            product = product_of(key)
        except ValueError as exc:
            raise UnknownContract(key, str(exc)) from None
        found = self._specs.get(product) or self._specs.get(self._folded.get(product.lower(), ""))
        if found is None:
            raise UnknownContract(key, f"product {product!r} is not in the contract table")
        return found

    def __contains__(self, instrument_or_product: object) -> bool:
        if not isinstance(instrument_or_product, str):
            return False
        try:
            self.spec(instrument_or_product)
        except UnknownContract:
            return False
        return True

    def products(self) -> tuple[str, ...]:
        """Product codes in table order."""
        return tuple(self._specs)

    def __iter__(self) -> Iterator[ContractSpec]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

    def __repr__(self) -> str:
        return f"ContractTable({len(self)} products)"


def spec_to_record(spec: ContractSpec) -> dict[str, Any]:
    """The plain record of a spec (sessions as lists, as TOML would give them)."""
    record = {name: getattr(spec, name) for name in FIELDS}
    record["sessions"] = [list(s) for s in spec.sessions]
    return record


def spec_from_record(
    record: Mapping[str, Any], *, index: int | None = None, new: bool = True
) -> ContractSpec:
    """Validate one record into a ContractSpec; errors name the record, product and key."""
    product = _record_product(record, index)

    def fail(key: str | None, reason: str) -> ContractRecordError:
        return ContractRecordError(reason, product=product, key=key, index=index)

    unknown = sorted(set(record) - set(FIELDS))
    if unknown:
        raise fail(unknown[0], f"unknown key (known keys: {', '.join(FIELDS)})")
    missing = [k for k in FIELDS if k not in record and k not in _OPTIONAL_FIELDS]
    if missing:
        hint = " (a partial record may only override a product already in the table)" if new else ""
        raise fail(missing[0], f"missing; a new product needs {', '.join(missing)}{hint}")

    values: dict[str, Any] = {"product": product}
    values["exchange"] = _text(record, "exchange", fail)
    if values["exchange"] not in EXCHANGES:
        raise fail(
            "exchange",
            f"unknown exchange {values['exchange']!r}; one of {', '.join(sorted(EXCHANGES))}",
        )
    values["name"] = _text(record, "name", fail)
    values["unit"] = _text(record, "unit", fail)
    values["commodity"] = _text(record, "commodity", fail) if "commodity" in record else product
    for key in ("multiplier", "tick_size", "reference_price"):
        values[key] = _positive(record, key, fail)
    for key in ("margin_rate", "limit_rate"):
        values[key] = _positive(record, key, fail)
        if values[key] >= 1:
            raise fail(key, f"is a fraction (0.07 for 7%), got {values[key]!r}")
    values["sessions"] = _sessions(record.get("sessions"), fail)
    values["fee_by"] = _text(record, "fee_by", fail) if "fee_by" in record else "volume"
    if values["fee_by"] not in FEE_BASES:
        raise fail("fee_by", f"must be one of {', '.join(FEE_BASES)}, got {values['fee_by']!r}")
    for key in ("fee_open", "fee_close", "fee_close_today"):
        if key in record:
            values[key] = _non_negative(record, key, fail)
            if values["fee_by"] == "turnover" and values[key] >= 1:
                raise fail(
                    key, f"is a fraction of turnover (0.0001 for 1/10000), got {values[key]!r}"
                )
    for key in ("margin_group", "as_of"):
        if key in record:
            value = record[key]
            if not isinstance(value, str):
                raise fail(key, f"must be a string, got {value!r}")
            values[key] = value
    if values.get("as_of") and not _is_date(values["as_of"]):
        raise fail("as_of", f"must be a YYYY-MM-DD date, got {values['as_of']!r}")
    return ContractSpec(**values)


def _is_date(text: str) -> bool:
    if not _DATE.match(text):
        return False
    try:
        datetime.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _record_product(record: Mapping[str, Any], index: int | None) -> str:
    if not isinstance(record, Mapping):
        raise ContractRecordError(
            f"must be a table of keys, got {type(record).__name__}", index=index
        )
    product = record.get("product")
    if not isinstance(product, str) or not product.isascii() or not product.isalpha():
        raise ContractRecordError(
            f"must be the product letters, e.g. 'rb' or 'SR', got {product!r}",
            key="product",
            index=index,
        )
    return product


def _text(record: Mapping[str, Any], key: str, fail: Any) -> str:
    value = record[key]
    if not isinstance(value, str) or not value.strip():
        raise fail(key, f"must be a non-empty string, got {value!r}")
    return value


def _positive(record: Mapping[str, Any], key: str, fail: Any) -> float:
    value = record[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise fail(key, f"must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise fail(key, f"must be positive, got {value!r}")
    return number


def _non_negative(record: Mapping[str, Any], key: str, fail: Any) -> float:
    value = record[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise fail(key, f"must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise fail(key, f"must be zero or positive, got {value!r}")
    return number


def _sessions(value: Any, fail: Any) -> tuple[tuple[str, str], ...]:
    if isinstance(value, str) or not isinstance(value, list | tuple) or not value:
        raise fail(
            "sessions", f'must be a non-empty list of ["HH:MM", "HH:MM"] pairs, got {value!r}'
        )
    sessions: list[tuple[str, str]] = []
    for i, pair in enumerate(value):
        if isinstance(pair, str) or not isinstance(pair, list | tuple) or len(pair) != 2:
            raise fail(
                "sessions", f'session {i + 1} must be a ["HH:MM", "HH:MM"] pair, got {pair!r}'
            )
        start, end = pair
        for t in (start, end):
            if not isinstance(t, str) or not _HHMM.match(t):
                raise fail("sessions", f"session {i + 1}: {t!r} is not a 24-hour HH:MM time")
        if start == end:
            raise fail("sessions", f"session {i + 1} starts and ends at {start}")
        if end < start and i != 0:
            raise fail(
                "sessions",
                f"session {i + 1} ({start}-{end}) wraps past midnight; only the first (night) session may",
            )
        sessions.append((start, end))
    return tuple(sessions)


def limit_prices(
    pre_settlement: np.ndarray | float,
    limit_rate: np.ndarray | float,
    tick_size: np.ndarray | float,
) -> tuple[np.ndarray, np.ndarray]:
    """Daily limit prices: pre-settlement ± |pre-settlement| x rate, the upper rounded down and the lower up
    to the tick, so both are prices the exchange accepts. Vectorized; arguments broadcast.

    A tiny tolerance keeps exact multiples exact (3500 x 1.05 is 3675.0000000000005 in floats).
    """
    pre = np.asarray(pre_settlement, dtype=float)
    rate = np.asarray(limit_rate, dtype=float)
    tick = np.asarray(tick_size, dtype=float)
    if np.any(~(tick > 0)):
        raise ValueError("tick_size must be positive")
    if np.any(~(rate >= 0)):
        raise ValueError("limit_rate must be non-negative")
    eps = 1e-9
    # pre ± |pre| × rate: a negative settlement (WTI, 2020-04-20) keeps upper above lower
    upper = np.floor(np.where(pre >= 0, pre * (1.0 + rate), pre - pre * rate) / tick + eps) * tick
    lower = np.ceil(np.where(pre >= 0, pre * (1.0 - rate), pre + pre * rate) / tick - eps) * tick
    # Snap away float noise (5737.800000000001) so limits compare equal to exchange prices.
    return np.round(upper, 9), np.round(lower, 9)
