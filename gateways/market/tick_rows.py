"""One CSV tick row as numbers: the parsing rules shared by the replay and the backtest.

Split from `replay.py` (which publishes rows onto a live feed) so the row rules — which values
are a price, how a recorder's time of day becomes an epoch — sit in one small module.

Any finite LastPrice is a price, zero and negative ones included (WTI settled at −37.63 on
2020-04-20): only an unparsable, NaN or infinite one (or beyond ±1e12) makes a bad row. The
optional prices (bid, ask, limits, previous settlement) are NaN when missing, exactly 0 (CTP's
"none" in some recorders) or absurd (CTP writes DBL_MAX for "none"); a negative one is kept.
"""

from __future__ import annotations

import gzip
import io
import re
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from rules.model import TickBatch

BEIJING = timezone(timedelta(hours=8))
SHORT_COLUMNS = (
    "UpdateTime",
    "BidPrice1",
    "BidVolume1",
    "AskPrice1",
    "AskVolume1",
    "LastPrice",
    "Volume",
    "OpenInterest",
)
MAX_REJECTS = 20
_NAME = re.compile(r"^(?P<instrument>[A-Za-z]+\d{3,4})(?:_(?P<day>\d{8}))?")
DAY_IN_NAME = re.compile(r"(?<!\d)(\d{8})(?!\d)")


class Row(NamedTuple):
    ts: float
    instrument: str
    last: float
    volume: float
    open_interest: float
    bid: float
    ask: float
    upper: float
    lower: float
    pre_settlement: float


class BadRow(ValueError):
    pass


def _price(text: str | None) -> float:
    """An optional price: NaN when missing, exactly 0 or absurd; a negative one is a price."""
    try:
        value = float(text) if text not in (None, "") else float("nan")
    except ValueError:
        return float("nan")
    return value if value != 0 and abs(value) < 1e12 else float("nan")


def _number(text: str | None) -> float:
    try:
        value = float(text) if text not in (None, "") else float("nan")
    except ValueError:
        return float("nan")
    return value if abs(value) < 1e15 else float("nan")


def _seconds(update_time: str) -> float:
    try:
        hh, mm, ss = update_time.strip().split(":")
        h, m, s = int(hh), int(mm), float(ss)
    except ValueError:
        raise BadRow(f"UpdateTime {update_time!r} is not HH:MM:SS[.fff]") from None
    if not (0 <= h < 24 and 0 <= m < 60 and 0 <= s < 61):
        raise BadRow(f"UpdateTime {update_time!r} out of range")
    return h * 3600 + m * 60 + s


def _day(text: str) -> date:
    try:
        return datetime.strptime(text.strip(), "%Y%m%d").date()
    except ValueError:
        raise BadRow(f"day {text!r} is not YYYYMMDD") from None


def previous_weekday(day: date) -> date:
    day -= timedelta(days=1)
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return day


def calendar_day(trading_day: date, seconds: float) -> date:
    """The calendar day of a row that only knows its trading day (see the module docstring)."""
    if seconds >= 18 * 3600:
        return previous_weekday(trading_day)
    if seconds < 6 * 3600:
        return previous_weekday(trading_day) + timedelta(days=1)
    return trading_day


def _epoch(day: date, seconds: float) -> float:
    midnight = datetime(day.year, day.month, day.day, tzinfo=BEIJING).timestamp()
    return midnight + seconds


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(
            gzip.open(path, "rb"), encoding="utf-8", errors="replace", newline=""
        )
    return open(path, encoding="utf-8", errors="replace", newline="")  # noqa: SIM115


def _last(text: str | None) -> float:
    try:
        value = float(text) if text not in (None, "") else float("nan")
    except ValueError:
        raise BadRow(f"LastPrice {text!r} is not a number") from None
    if not abs(value) < 1e12:  # NaN and inf fail too; zero and negative are prices
        raise BadRow(f"LastPrice {text!r} is NaN, infinite or absurd")
    return value


def _chain_first(first: list[str], reader: Any) -> Iterator[tuple[int, list[str]]]:
    yield 1, first
    yield from enumerate(reader, start=2)


def to_batch(rows: list[Row]) -> TickBatch:
    """Columnar TickBatch of rows (instrument names interned per batch)."""
    names: dict[str, int] = {}
    idx = np.fromiter(
        (names.setdefault(r.instrument, len(names)) for r in rows), np.uint32, len(rows)
    )
    cols = np.array([r[2:] for r in rows], dtype=np.float64).reshape(len(rows), 8)
    ts = np.fromiter((r.ts for r in rows), np.float64, len(rows))
    return TickBatch(
        instruments=list(names),
        instrument_idx=idx,
        last=cols[:, 0].copy(),
        volume=cols[:, 1].copy(),
        open_interest=cols[:, 2].copy(),
        bid=cols[:, 3].copy(),
        ask=cols[:, 4].copy(),
        exchange_ts=ts,
        upper_limit=cols[:, 5].copy(),
        lower_limit=cols[:, 6].copy(),
        pre_settlement=cols[:, 7].copy(),
    )
