"""Load the contract table: the packaged default plus the user's override files.

The default figures go stale (exchanges move margins, limits and fees before every holiday), so
a deployment layers its own files on top: TOML in the default's format, the broker's CTP
instrument table (CSV: multiplier, tick and margin ratio, and products the default lacks), or the
broker's CTP commission-rate table (CSV: the fees it charges). Every error names the file, the
record or line and the key, because the person fixing it has only the file in front of them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from infra.ctp_tables import (
    CTP_COMMISSION_FIELDS,
    CTP_INSTRUMENT_FIELDS,
    CtpProduct,
    ctp_csv_kind,
    load_ctp_commission_csv,
    load_ctp_instrument_csv,
    read_ctp_instruments,
)
from rules.contracts import ContractRecordError, ContractTable, UnknownContract

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

__all__ = [
    "CTP_COMMISSION_FIELDS",
    "CTP_INSTRUMENT_FIELDS",
    "DEFAULT_CONTRACTS_PATH",
    "load_contract_table",
    "load_ctp_commission_csv",
    "load_ctp_instrument_csv",
    "new_product_record",
    "read_contract_records",
]

DEFAULT_CONTRACTS_PATH: Path = Path(__file__).resolve().parent / "data" / "contracts.toml"

# What a product added from a CTP instrument table gets for the keys CTP does not carry.
# Sessions: the exchange's day session only (a night session needs a TOML record: CTP does not
# say which products trade at night). Limit rate: the most common ordinary-month limit of the
# exchange's products in the default table (2026-12). Margin rate, when CTP has no valid ratio:
# that limit plus two points (the usual spacing; a margin must cover a limit move).
_COMMODITY_DAY = (("09:00", "10:15"), ("10:30", "11:30"), ("13:30", "15:00"))
NEW_PRODUCT_SESSIONS: Mapping[str, tuple[tuple[str, str], ...]] = {
    "SHFE": _COMMODITY_DAY,
    "INE": _COMMODITY_DAY,
    "DCE": _COMMODITY_DAY,
    "CZCE": _COMMODITY_DAY,
    "GFEX": _COMMODITY_DAY,
    "CFFEX": (("09:30", "11:30"), ("13:00", "15:00")),
}
NEW_PRODUCT_LIMIT_RATE: Mapping[str, float] = {
    "SHFE": 0.05,
    "INE": 0.08,
    "DCE": 0.07,
    "CZCE": 0.06,
    "CFFEX": 0.10,
    "GFEX": 0.07,
}
NEW_PRODUCT_UNIT = "未知"  # CTP has no quote unit
# Without a price column: 1000 ticks, so a tick is 0.1% of the price as for most listed products
# (a price of 1.0 would make one tick larger than the price for most of them).
NEW_PRODUCT_PRICE_TICKS = 1000


def load_contract_table(overrides: Sequence[str | Path] = ()) -> ContractTable:
    """The default table with each override file applied in order (later files win).

    ``.csv`` files are CTP tables, told apart by their header: a commission-rate table (header
    with ``OpenRatioByMoney``...) sets the fees of products the table has; an instrument table
    updates the products the table has and adds the ones it lacks (``new_product_record``).
    Anything else is TOML.
    """
    default = read_contract_records(DEFAULT_CONTRACTS_PATH)
    table = _named(DEFAULT_CONTRACTS_PATH, ContractTable.from_records, default)
    for override in overrides:
        path = Path(override)
        if path.suffix.lower() == ".csv" and ctp_csv_kind(path) == "commission":
            records = _known(table, load_ctp_commission_csv(path))
        elif path.suffix.lower() == ".csv":
            records = [_instrument_record(table, p) for p in read_ctp_instruments(path)]
        else:
            records = read_contract_records(path)
        table = _named(path, table.with_overrides, records)
    return table


def new_product_record(product: CtpProduct) -> dict[str, Any]:
    """A full record for a product only a CTP instrument table knows: its exchange, multiplier,
    tick and margin ratio from CTP; the name from the instrument name without its month
    ("螺纹钢1801" -> "螺纹钢", else the product code); sessions, limit rate and unit from the
    per-exchange defaults above; reference_price from a price column when the file has one
    (``infra.ctp_tables.PRICE_COLUMNS``), else 1000 ticks; no fees; as_of unknown ("")."""
    record = dict(product.record)
    exchange = record["exchange"]
    limit = NEW_PRODUCT_LIMIT_RATE.get(exchange, 0.07)
    record.setdefault("margin_rate", round(limit + 0.02, 4))
    record["name"] = product.name
    record["limit_rate"] = limit
    record["sessions"] = [list(s) for s in NEW_PRODUCT_SESSIONS.get(exchange, _COMMODITY_DAY)]
    record["unit"] = NEW_PRODUCT_UNIT
    record["reference_price"] = product.price or NEW_PRODUCT_PRICE_TICKS * record["tick_size"]
    return record


def _instrument_record(table: ContractTable, product: CtpProduct) -> dict[str, Any]:
    """The override for a product the table has (under the table's spelling of its code), or
    the full record of a new one."""
    try:
        known = table.spec(product.record["product"]).product
    except UnknownContract:
        return new_product_record(product)
    return {**product.record, "product": known}


def _known(table: ContractTable, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fee records for the products the table has (a commission table cannot create a product:
    it has no multiplier or tick), under the table's spelling of each code."""
    out = []
    for record in records:
        try:
            out.append({**record, "product": table.spec(record["product"]).product})
        except UnknownContract:
            continue
    return out


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
