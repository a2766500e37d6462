"""Recorded tick files read into columns, for the backtest (`fengkong backtest`).

The CTP-style CSVs of ../shared/data/ticks/ (gateways.market.replay's formats: the full CTP/wtpy
header, or the 8-column short format with or without a header, the instrument and trading day
from the file name), plain or gzipped; directories are expanded to their CSVs. The short format,
which most recorders write, is parsed in C (numpy) when every row is clean; anything else goes
through the replay's row reader, which counts and skips bad rows. `cache` keeps parsed columns
(.npz, keyed by path, size and mtime) so tuning rules against the same history parses it once.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from collections import Counter
from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np

from gateways.market.replay import (
    BEIJING,
    DAY_IN_NAME,
    SHORT_COLUMNS,
    CsvReplayPublisher,
    previous_weekday,
)
from rules.engine.backtest import Ticks

READER_VERSION = "1"
_FUTURE = re.compile(r"^[A-Za-z]+\d{3,4}$")
_TIME = re.compile(r"^\s*\d{1,2}:\d{2}:\d{2}")
FIELDS = ("ts", "last", "volume", "open_interest", "bid", "ask", "upper", "lower", "pre_settlement")


def tick_files(paths: Iterable[str | Path]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.iterdir() if f.name.endswith((".csv", ".csv.gz")))
        elif p.exists():
            out.append(p)
        else:
            raise FileNotFoundError(f"{p}: file not found")
    return out


def _text(path: Path) -> str:
    raw = gzip.open(path, "rb").read() if path.suffix == ".gz" else path.read_bytes()
    return raw.decode("utf-8", errors="replace")


def _fast_short(path: Path, text: str, day: date) -> dict[str, np.ndarray] | None:
    """Columns of a clean short-format file parsed in C; None when any row needs the reader."""
    body = text.replace("\r", "")
    first, _, rest = body.partition("\n")
    header = [c.strip() for c in first.split(",")]
    if header == list(SHORT_COLUMNS):
        body = rest
    elif not _TIME.match(first):
        return None  # another header: the reader knows it
    body = body.strip("\n")
    if not body:
        return {k: np.zeros(0) for k in FIELDS}
    n = body.count("\n") + 1
    try:
        values = np.fromstring(body.replace(":", ",").replace("\n", ","), sep=",")
    except ValueError:
        return None
    if values.size != n * 10:
        return None
    v = values.reshape(n, 10)
    h, m, s = v[:, 0], v[:, 1], v[:, 2]
    last = v[:, 7]
    if not (
        np.all(
            (h >= 0)
            & (h < 24)
            & (h == np.floor(h))
            & (m >= 0)
            & (m < 60)
            & (m == np.floor(m))
            & (s >= 0)
            & (s < 61)
        )
        and np.all(np.abs(last) < 1e12)
    ):
        return None
    seconds = h * 3600 + m * 60 + s
    prev = previous_weekday(day)
    bases = [_midnight(prev), _midnight(prev) + 86400.0, _midnight(day)]
    base = np.where(
        seconds >= 18 * 3600, bases[0], np.where(seconds < 6 * 3600, bases[1], bases[2])
    )
    nan = np.full(n, np.nan)

    def price(x: np.ndarray) -> np.ndarray:  # as gateways.market.tick_rows._price
        return np.where((x != 0) & (np.abs(x) < 1e12), x, np.nan)

    def number(x: np.ndarray) -> np.ndarray:
        return np.where(np.abs(x) < 1e15, x, np.nan)

    return {
        "ts": base + seconds,
        "last": last.copy(),
        "volume": number(v[:, 8]),
        "open_interest": number(v[:, 9]),
        "bid": price(v[:, 3]),
        "ask": price(v[:, 5]),
        "upper": nan,
        "lower": nan,
        "pre_settlement": nan.copy(),
    }


def _midnight(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=BEIJING).timestamp()


def _read_one(
    path: Path, trading_day: str | None, info: Counter
) -> tuple[list[str], np.ndarray, dict[str, np.ndarray]] | None:
    """(instruments, idx, columns) of one file; None when it is not a futures tick file."""
    text = _text(path)
    first = text.split("\n", 1)[0]
    if "InstrumentID" not in first:
        stem = path.name.split("_", 1)[0].split(".", 1)[0]
        if not _FUTURE.match(stem):
            info["skipped_files"] += 1  # options and spreads: no futures contract in the name
            return None
        m = DAY_IN_NAME.search(path.name)
        day = (
            datetime.strptime(m.group(1), "%Y%m%d").date()
            if m
            else (datetime.strptime(trading_day, "%Y%m%d").date() if trading_day else None)
        )
        if day is not None:
            cols = _fast_short(path, text, day)
            if cols is not None:
                info["rows_fast"] += cols["ts"].shape[0]
                return [stem], np.zeros(cols["ts"].shape[0], dtype=np.int32), cols
    reader = CsvReplayPublisher("tcp://127.0.0.1:0", [path], speed=None, trading_day=trading_day)
    rows = list(reader.read_file(path))
    info["bad_rows"] += reader.stats["bad_rows"]
    info["rows_reader"] += len(rows)
    names: dict[str, int] = {}
    idx = np.fromiter(
        (names.setdefault(r.instrument, len(names)) for r in rows), np.int32, len(rows)
    )
    arr = np.array([tuple(r[:1]) + tuple(r[2:]) for r in rows], dtype=np.float64).reshape(
        len(rows), 9
    )
    cols = {k: arr[:, i].copy() for i, k in enumerate(FIELDS)}
    return list(names), idx, cols


def _cached(path: Path, cache: Path | None, trading_day: str | None, info: Counter) -> Any:
    if cache is None:
        return _read_one(path, trading_day, info)
    st = path.stat()
    key = hashlib.sha1(
        f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{trading_day}|{READER_VERSION}".encode()
    ).hexdigest()[:20]
    file = cache / f"{key}.npz"
    if file.exists():
        z = np.load(file, allow_pickle=False)
        if z["skip"].item():
            info["skipped_files"] += 1
            return None
        info["rows_cached"] += z["ts"].shape[0]
        # plain str, not numpy.str_: names enter alert ids (composite hashes) and JSON
        return [str(n) for n in z["instruments"].tolist()], z["idx"], {k: z[k] for k in FIELDS}
    got = _read_one(path, trading_day, info)
    cache.mkdir(parents=True, exist_ok=True)
    tmp = cache / f"{key}.tmp.npz"
    if got is None:
        np.savez(tmp, skip=np.array(True))
    else:
        names, idx, cols = got
        np.savez(tmp, skip=np.array(False), instruments=np.array(names), idx=idx, **cols)
    tmp.replace(file)
    return got


def load_ticks(
    paths: Iterable[str | Path], cache: str | Path | None = None, trading_day: str | None = None
) -> tuple[Ticks, dict[str, int]]:
    """Every tick of the files, merged in time order (ties keep the files' order)."""
    info: Counter = Counter()
    names: dict[str, int] = {}
    parts_idx, parts = [], []
    files = tick_files(paths)
    for path in files:
        got = _cached(path, Path(cache) if cache else None, trading_day, info)
        if got is None:
            continue
        local, idx, cols = got
        remap = np.array([names.setdefault(n, len(names)) for n in local] or [0], dtype=np.int32)
        parts_idx.append(remap[idx] if idx.size else idx)
        parts.append(cols)
    info["files"] = len(files)
    if not parts:
        empty = np.zeros(0)
        return Ticks([], np.zeros(0, dtype=np.int32), *(empty for _ in FIELDS)), dict(info)
    idx = np.concatenate(parts_idx)
    cols = {k: np.concatenate([p[k] for p in parts]) for k in FIELDS}
    order = np.argsort(cols["ts"], kind="stable")
    ticks = Ticks(list(names), idx[order], *(cols[k][order] for k in FIELDS))
    return ticks, dict(info)
