"""Read a broker's CTP tables (CSV) into contract-table records.

Two tables matter to the contract table, both dumped by every CTP client:
- the instrument table (CThostFtdcInstrumentField): multiplier, tick and the exchange margin
  ratio per contract. It can update a product the table has or add one it lacks, filling what
  CTP does not carry (sessions, price limit, unit, a price level) from documented defaults;
- the commission-rate table (CThostFtdcInstrumentCommissionRateField): the fees the broker
  actually charges, per product or per contract, by money (a fraction of turnover) and by volume
  (yuan per lot) for open, close and close-today.
The person fixing a bad row has only the file in front of them, so every error names the file,
the line and the field.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rules.contracts import product_of

# CThostFtdcInstrumentField, in the order a CTP instrument dump writes it (no header).
CTP_INSTRUMENT_FIELDS: tuple[str, ...] = (
    "InstrumentID", "ExchangeID", "InstrumentName", "ExchangeInstID", "ProductID",
    "ProductClass", "DeliveryYear", "DeliveryMonth", "MaxMarketOrderVolume",
    "MinMarketOrderVolume", "MaxLimitOrderVolume", "MinLimitOrderVolume", "VolumeMultiple",
    "PriceTick", "CreateDate", "OpenDate", "ExpireDate", "StartDelivDate", "EndDelivDate",
    "InstLifePhase", "IsTrading", "PositionType", "PositionDateType", "LongMarginRatio",
    "ShortMarginRatio",
)  # fmt: skip
_CTP_REQUIRED = ("InstrumentID", "ExchangeID", "ProductClass", "VolumeMultiple", "PriceTick")
_CTP_FUTURES = "1"  # ProductClass: 1 futures, 2 options, 3 combinations
# Price columns a broker's export may add to the instrument table (not CThostFtdcInstrumentField
# fields); the first positive one becomes a new product's reference_price.
PRICE_COLUMNS: tuple[str, ...] = ("PreSettlementPrice", "SettlementPrice", "LastPrice")

# CThostFtdcInstrumentCommissionRateField: the columns fengkong reads (others are ignored).
CTP_COMMISSION_FIELDS: tuple[str, ...] = (
    "InstrumentID", "OpenRatioByMoney", "OpenRatioByVolume", "CloseRatioByMoney",
    "CloseRatioByVolume", "CloseTodayRatioByMoney", "CloseTodayRatioByVolume",
)  # fmt: skip
_LEGS: tuple[tuple[str, str], ...] = (
    ("fee_open", "Open"),
    ("fee_close", "Close"),
    ("fee_close_today", "CloseToday"),
)
_FUTURES_ID = re.compile(r"^[A-Za-z]+\d{3,4}$")  # "rb2601", "SR601": not options or spreads
_MONTH_TAIL = re.compile(r"\d+月?$")  # the month in an instrument's name
_UNSET = 1e300  # CTP writes DBL_MAX (1.79769e+308) into a field it does not set


@dataclass(frozen=True, slots=True)
class CtpProduct:
    """One futures product as a CTP instrument table describes it. ``record`` holds the keys the
    table carries (product, exchange, multiplier, tick_size, margin_rate when valid); ``name``
    and ``price`` are what a new product's record is completed from."""

    record: dict[str, Any]
    name: str
    price: float | None


def ctp_csv_kind(path: Path) -> str:
    """ "commission" when the file's first non-empty row is a header naming the commission-rate
    fields, else "instrument" (with or without a header)."""
    rows = _csv_rows(path)
    header = {cell.strip() for cell in rows[0][1]} if rows else set()
    return "commission" if "OpenRatioByMoney" in header else "instrument"


def read_ctp_instruments(path: str | Path) -> list[CtpProduct]:
    """The futures products of a CTP instrument table, one per product.

    Accepts the raw dump (GBK, no header, the CThostFtdcInstrumentField order) or a CSV with the
    CTP field names as header, in UTF-8 or GBK. Options and combinations are skipped. The
    multiplier, tick and name come from the product's latest-expiring contract (the newest
    spec); the margin rate is the long margin ratio most of its contracts carry (the ordinary
    months: near-delivery months carry raised ratios), the lower on a tie; a product without a
    valid ratio (CTP writes DBL_MAX when unset) gets no margin_rate.
    """
    path = Path(path)
    by_product: dict[str, list[tuple[str, int, dict[str, Any]]]] = {}
    for line, row in _instrument_rows(path):
        if row.get("ProductClass", "").strip() != _CTP_FUTURES:
            continue
        instrument = row["InstrumentID"].strip()
        try:
            product = row.get("ProductID", "").strip() or product_of(instrument)
        except ValueError as exc:
            raise ValueError(f"{path}: line {line}: {exc}") from None
        parsed = {
            "exchange": row["ExchangeID"].strip(),
            "multiplier": _number(row, "VolumeMultiple", path, line),
            "tick_size": _number(row, "PriceTick", path, line),
            "margin": _margin(row.get("LongMarginRatio", ""), path, line),
            "name": _product_name(row.get("InstrumentName", ""), instrument, product),
            "price": _price(row, path, line),
        }
        by_product.setdefault(product, []).append((row.get("ExpireDate", "").strip(), line, parsed))

    products: list[CtpProduct] = []
    for product, contracts in by_product.items():
        newest = max(contracts, key=lambda c: (c[0], c[1]))[2]
        record: dict[str, Any] = {
            "product": product,
            "exchange": newest["exchange"],
            "multiplier": newest["multiplier"],
            "tick_size": newest["tick_size"],
        }
        margins = Counter(c[2]["margin"] for c in contracts if c[2]["margin"] is not None)
        if margins:
            record["margin_rate"] = min(margins, key=lambda m: (-margins[m], m))
        prices = [c[2]["price"] for c in sorted(contracts, key=lambda c: c[:2]) if c[2]["price"]]
        products.append(CtpProduct(record, newest["name"], prices[0] if prices else None))
    return products


def load_ctp_instrument_csv(path: str | Path) -> list[dict[str, Any]]:
    """Override records (product, exchange, multiplier, tick_size, margin_rate) from a CTP
    instrument table, one per futures product (see ``read_ctp_instruments``)."""
    return [p.record for p in read_ctp_instruments(path)]


def load_ctp_commission_csv(path: str | Path) -> list[dict[str, Any]]:
    """Fee records (product, fee_by, fee_open, fee_close, fee_close_today) from a CTP
    commission-rate table, one per futures product it names. The file needs a header with the
    CThostFtdcInstrumentCommissionRateField names (UTF-8 or GBK); other columns are ignored.

    A row's InstrumentID is a product ("rb": CTP's answer to a per-product query) or a futures
    contract ("rb2601"); option and spread ids are skipped. A product-level row wins over its
    contracts' rows; otherwise the fees most of its contracts carry (the ordinary months) win,
    the earliest row on a tie. fengkong keeps one fee basis per product, so a row is refused,
    with its file and line, when one leg is charged both by money and by volume, or when some
    legs are by money and others by volume. A row with no fee at all is free, by volume.
    """
    path = Path(path)
    rows = _csv_rows(path)
    if not rows:
        return []
    header = [cell.strip() for cell in rows[0][1]]
    missing = [f for f in CTP_COMMISSION_FIELDS if f not in header]
    if missing:
        raise ValueError(f"{path}: header lacks CTP commission column {missing[0]!r}")
    by_product: dict[str, dict[str, Any]] = {}  # product -> the product-level row
    by_contract: dict[str, list[tuple[int, tuple[Any, ...]]]] = {}
    for line, cells in rows[1:]:
        if len(cells) != len(header):
            raise ValueError(
                f"{path}: line {line}: {len(cells)} columns, expected {len(header)} (the header's)"
            )
        row = dict(zip(header, cells, strict=True))
        instrument = row["InstrumentID"].strip()
        if instrument.isascii() and instrument.isalpha():
            product = instrument
        elif _FUTURES_ID.match(instrument):
            product = product_of(instrument)
        else:
            continue  # an option ("m2601-C-3000"), a spread or a blank id: not a futures fee
        fees = _fees(row, path, line)
        if product == instrument:
            if product in by_product:
                raise ValueError(f"{path}: line {line}: a second row for product {product!r}")
            by_product[product] = fees
        else:
            by_contract.setdefault(product, []).append((line, tuple(sorted(fees.items()))))
    records: list[dict[str, Any]] = []
    for product in sorted(set(by_product) | set(by_contract)):
        fees = by_product.get(product)
        if fees is None:
            counts = Counter(f for _, f in by_contract[product])
            first = {f: line for line, f in reversed(by_contract[product])}
            best = min(counts, key=lambda f: (-counts[f], first[f]))
            fees = dict(best)
        records.append({"product": product, **fees})
    return records


def _fees(row: Mapping[str, str], path: Path, line: int) -> dict[str, Any]:
    money: dict[str, float] = {}
    volume: dict[str, float] = {}
    for key, leg in _LEGS:
        by_money = _ratio(row, f"{leg}RatioByMoney", path, line)
        by_volume = _ratio(row, f"{leg}RatioByVolume", path, line)
        if by_money > 0 and by_volume > 0:
            raise ValueError(
                f"{path}: line {line}: {leg} is charged both by money ({by_money!r}) and by "
                f"volume ({by_volume!r}); fengkong keeps one fee basis per product"
            )
        if by_money >= 1:
            raise ValueError(
                f"{path}: line {line}: {leg}RatioByMoney {by_money!r} is a fraction of turnover "
                "and must be below 1"
            )
        money[key], volume[key] = by_money, by_volume
    money_legs = [leg for (key, leg) in _LEGS if money[key] > 0]
    volume_legs = [leg for (key, leg) in _LEGS if volume[key] > 0]
    if money_legs and volume_legs:
        raise ValueError(
            f"{path}: line {line}: mixes bases ({', '.join(money_legs)} by money, "
            f"{', '.join(volume_legs)} by volume); fengkong keeps one fee basis per product"
        )
    if money_legs:
        return {"fee_by": "turnover", **money}
    return {"fee_by": "volume", **volume}


def _ratio(row: Mapping[str, str], key: str, path: Path, line: int) -> float:
    text = row.get(key, "").strip()
    try:
        value = float(text) if text else 0.0
    except ValueError:
        raise ValueError(f"{path}: line {line}: {key} {text!r} is not a number") from None
    if value != value or value < 0:
        raise ValueError(f"{path}: line {line}: {key} must be zero or positive, got {text!r}")
    if value >= _UNSET:
        raise ValueError(f"{path}: line {line}: {key} is unset (DBL_MAX); write 0 for no fee")
    return value


def _csv_rows(path: Path) -> list[tuple[int, list[str]]]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: CTP table not found") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = raw.decode("gbk")
        except UnicodeDecodeError:
            raise ValueError(f"{path}: neither UTF-8 nor GBK text") from None
    reader = csv.reader(io.StringIO(text))
    return [(n, r) for n, r in enumerate(reader, start=1) if any(cell.strip() for cell in r)]


def _instrument_rows(path: Path) -> list[tuple[int, dict[str, str]]]:
    rows = _csv_rows(path)
    if not rows:
        return []
    first = [cell.strip() for cell in rows[0][1]]
    if "InstrumentID" in first:
        header, rows = first, rows[1:]
        missing = [f for f in _CTP_REQUIRED if f not in header]
        if missing:
            raise ValueError(f"{path}: header lacks CTP column {missing[0]!r}")
    else:
        header = list(CTP_INSTRUMENT_FIELDS)
    out = []
    for line, cells in rows:
        if len(cells) != len(header):
            raise ValueError(
                f"{path}: line {line}: {len(cells)} columns, expected {len(header)} "
                "(CTP instrument fields; see infra.ctp_tables.CTP_INSTRUMENT_FIELDS)"
            )
        out.append((line, dict(zip(header, cells, strict=True))))
    return out


def _number(row: Mapping[str, str], key: str, path: Path, line: int) -> float:
    text = row.get(key, "").strip()
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{path}: line {line}: {key} {text!r} is not a number") from None
    if not 0 < value < 1e12:
        raise ValueError(f"{path}: line {line}: {key} must be positive, got {text!r}")
    return value


def _margin(text: str, path: Path, line: int) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{path}: line {line}: LongMarginRatio {text!r} is not a number") from None
    return value if 0 < value < 1 else None


def _price(row: Mapping[str, str], path: Path, line: int) -> float | None:
    for key in PRICE_COLUMNS:
        text = row.get(key, "").strip()
        if not text:
            continue
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{path}: line {line}: {key} {text!r} is not a number") from None
        if 0 < value < _UNSET:
            return value
    return None


def _product_name(instrument_name: str, instrument: str, product: str) -> str:
    """ "豆粕1805" -> "豆粕", "白糖5月" -> "白糖" (CZCE); the product code when the name is
    empty or holds the id (SHFE and CFFEX name contracts by their id)."""
    name = instrument_name.strip()
    if not name or instrument.lower() in name.lower():
        return product
    name = _MONTH_TAIL.sub("", name).strip()
    return name or product
