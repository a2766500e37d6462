"""Load the contract table: the packaged default plus the user's override files.

The default figures go stale (exchanges move margins and limits before every holiday), so a
deployment layers its own files on top: TOML in the default's format, or the broker's CTP
instrument table (CSV), which carries the multiplier, tick and margin ratio the broker applies.
Every error names the file, the record and the key, because the person fixing it has only the
file in front of them.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rules.contracts import ContractRecordError, ContractTable, product_of

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

DEFAULT_CONTRACTS_PATH: Path = Path(__file__).resolve().parent / "data" / "contracts.toml"

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


def load_contract_table(overrides: Sequence[str | Path] = ()) -> ContractTable:
    """The default table with each override file applied in order (later files win).

    ``.csv`` files are read as CTP instrument tables and only update products the table already
    has (a CTP table has no sessions or limits to create a product from); anything else is TOML.
    """
    default = read_contract_records(DEFAULT_CONTRACTS_PATH)
    table = _named(DEFAULT_CONTRACTS_PATH, ContractTable.from_records, default)
    for override in overrides:
        path = Path(override)
        if path.suffix.lower() == ".csv":
            known = set(table.products())
            records = [r for r in load_ctp_instrument_csv(path) if r["product"] in known]
        else:
            records = read_contract_records(path)
        table = _named(path, table.with_overrides, records)
    return table


def read_contract_records(path: str | Path) -> list[dict[str, Any]]:
    """The ``[[contract]]`` records of a TOML file, checked for shape only (values are checked
    when they are applied to a table)."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            document = tomllib.load(fh)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: contract file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from None
    extra = sorted(set(document) - {"contract"})
    if extra:
        raise ValueError(
            f"{path}: unknown top-level key {extra[0]!r}; records go in [[contract]] tables"
        )
    records = document.get("contract", [])
    if not isinstance(records, list) or not all(isinstance(r, Mapping) for r in records):
        raise ValueError(f"{path}: 'contract' must be an array of tables ([[contract]])")
    return [dict(r) for r in records]


def _named(
    path: Path,
    build: Callable[[list[dict[str, Any]]], ContractTable],
    records: list[dict[str, Any]],
) -> ContractTable:
    """Run ``build`` on a file's records, putting the file's name in front of any record error."""
    try:
        return build(records)
    except ContractRecordError as exc:
        raise ValueError(f"{path}: {exc}") from exc


def load_ctp_instrument_csv(path: str | Path) -> list[dict[str, Any]]:
    """Override records (product, exchange, multiplier, tick_size, margin_rate) from a CTP
    instrument table, one per futures product.

    Accepts the raw dump (GBK, no header, the CThostFtdcInstrumentField order) or a CSV with the
    CTP field names as header, in UTF-8 or GBK. Options and combinations are skipped. The
    multiplier and tick come from the product's latest-expiring contract (the newest spec); the
    margin rate is the long margin ratio most of its contracts carry (the ordinary months:
    near-delivery months carry raised ratios), the lower on a tie; a product without a valid
    ratio (CTP writes DBL_MAX when unset) gets no margin_rate.
    """
    path = Path(path)
    rows = _ctp_rows(path)
    by_product: dict[str, list[tuple[str, int, dict[str, Any]]]] = {}
    for line, row in rows:
        if row.get("ProductClass", "").strip() != _CTP_FUTURES:
            continue
        instrument = row["InstrumentID"].strip()
        try:
            product = row.get("ProductID", "").strip() or product_of(instrument)
        except ValueError as exc:
            raise ValueError(f"{path}: line {line}: {exc}") from None
        parsed = {
            "exchange": row["ExchangeID"].strip(),
            "multiplier": _ctp_number(row, "VolumeMultiple", path, line),
            "tick_size": _ctp_number(row, "PriceTick", path, line),
            "margin": _ctp_margin(row.get("LongMarginRatio", ""), path, line),
        }
        by_product.setdefault(product, []).append((row.get("ExpireDate", "").strip(), line, parsed))

    records: list[dict[str, Any]] = []
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
        records.append(record)
    return records


def _ctp_rows(path: Path) -> list[tuple[int, dict[str, str]]]:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = raw.decode("gbk")
        except UnicodeDecodeError:
            raise ValueError(f"{path}: neither UTF-8 nor GBK text") from None
    reader = csv.reader(io.StringIO(text))
    rows = [(n, r) for n, r in enumerate(reader, start=1) if any(cell.strip() for cell in r)]
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
                "(CTP instrument fields; see infra.specs.CTP_INSTRUMENT_FIELDS)"
            )
        out.append((line, dict(zip(header, cells, strict=True))))
    return out


def _ctp_number(row: Mapping[str, str], key: str, path: Path, line: int) -> float:
    text = row.get(key, "").strip()
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{path}: line {line}: {key} {text!r} is not a number") from None
    if not 0 < value < 1e12:
        raise ValueError(f"{path}: line {line}: {key} must be positive, got {text!r}")
    return value


def _ctp_margin(text: str, path: Path, line: int) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{path}: line {line}: LongMarginRatio {text!r} is not a number") from None
    return value if 0 < value < 1 else None
