"""Replay recorded CTP ticks as if they were live: the same `[b"T", encode_ticks(batch)]` frames
the simulated exchange publishes, so a backtest exercises exactly the live path.

Files are merged by time across instruments (each file is assumed to be in time order, as
recorders write them; the few-millisecond jitter some DCE recorders show is published as is) and published in batches at real speed × `speed`, or as fast as possible
(`speed=None`). Plain or gzip (".gz") CSV.

Formats read (the header decides; columns are found by name, extra columns are ignored):

- CTP / wtpy full format, header `TradingDay,ActionDay,UpdateTime,ExchangeID,InstrumentID,
  LastPrice,...,UpperLimitPrice,LowerLimitPrice,Volume,...,OpenInterest,...,PreSettlementPrice,
  ...,BidPrice1,BidVolume1,AskPrice1,AskVolume1`. Read: ActionDay (calendar day of the row;
  TradingDay when ActionDay is missing, or equal to TradingDay on a night row — DCE's recorders
  write it so), UpdateTime, InstrumentID, LastPrice, UpperLimitPrice, LowerLimitPrice, Volume,
  OpenInterest, PreSettlementPrice, BidPrice1, AskPrice1.
- Short format `UpdateTime,BidPrice1,BidVolume1,AskPrice1,AskVolume1,LastPrice,Volume,
  OpenInterest`, with that header or without one (same 8 columns). The instrument and trading
  day come from the file name (`rb1801_20171113.csv` → rb1801, 2017-11-13) or `trading_day`.
  Limits and pre-settlement are NaN.

Time: UpdateTime "HH:MM:SS[.fff]" is Beijing time (UTC+8). Rows without a calendar day of their
own are placed like this: ≥ 18:00 is the night before the trading day (the previous weekday:
Friday night for a Monday), < 06:00 is the morning after that night, the rest is the trading day
itself. Holidays are ignored — good enough to order a replay.

Bad rows (unparsable time, LastPrice unparsable, NaN or infinite) are counted in
`stats["bad_rows"]`, the first few as "file:line: why" in `rejects`, and skipped; a LastPrice of
zero or below is a price like any other (gateways.market.tick_rows has the row rules).
"""

from __future__ import annotations

import argparse
import csv
import heapq
import threading
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import zmq

from gateways.market.tick_rows import (  # noqa: F401 (re-exported: the readers' helpers)
    _NAME,
    BEIJING,
    DAY_IN_NAME,
    MAX_REJECTS,
    SHORT_COLUMNS,
    BadRow,
    Row,
    _chain_first,
    _day,
    _epoch,
    _last,
    _number,
    _open_text,
    _price,
    _seconds,
    calendar_day,
    previous_weekday,
    to_batch,
)
from infra.codec import encode_ticks


class CsvReplayPublisher:
    """Publish tick CSVs as tick frames on a PUB socket, in time order across files."""

    def __init__(
        self,
        pub_endpoint: str,
        files: list[Path],
        *,
        speed: float | None = 1.0,
        batch_ms: int = 50,
        max_batch: int = 20_000,
        trading_day: str | None = None,
        max_rows_per_file: int | None = None,
        warmup_s: float = 0.3,
    ) -> None:
        """`warmup_s`: pause after binding so subscribers connect before the first frame (PUB
        drops frames nobody is subscribed to yet)."""
        if speed is not None and speed <= 0:
            raise ValueError("speed must be positive or None (as fast as possible)")
        self.pub_endpoint = pub_endpoint
        self.files = [Path(f) for f in files]
        self.speed = speed
        self.batch_ms = batch_ms
        self.max_batch = max_batch
        self.trading_day = _day(trading_day) if trading_day else None
        self.max_rows_per_file = max_rows_per_file
        self.warmup_s = warmup_s
        self.stats: dict[str, Any] = {
            "rows_read": 0,
            "ticks_sent": 0,
            "batches_sent": 0,
            "bad_rows": 0,
            "done": False,
        }
        self.rejects: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pub: zmq.Socket | None = None
        for f in self.files:  # fail at construction, not half-way through the replay
            if not f.exists():
                raise FileNotFoundError(f)

    # -- reading ---------------------------------------------------------------------------
    def _reject(self, where: str, why: str) -> None:
        self.stats["bad_rows"] += 1
        if len(self.rejects) < MAX_REJECTS:
            self.rejects.append(f"{where}: {why}")

    def _file_day(self, path: Path) -> date | None:
        match = DAY_IN_NAME.search(path.name)
        if match:
            try:
                return _day(match.group(1))
            except BadRow:
                pass
        return self.trading_day

    def read_file(self, path: Path) -> Iterator[Row]:
        """Rows of one file, bad ones counted and skipped."""
        with _open_text(path) as fh:
            reader = csv.reader(fh)
            first = next(reader, None)
            if first is None:
                return
            header = [c.strip() for c in first]
            if "InstrumentID" in header:
                yield from self._read_full(path, header, reader)
                return
            match = _NAME.match(path.name)
            if match is None:
                raise ValueError(f"{path}: short format needs the instrument in the file name")
            day = self._file_day(path)
            if day is None:
                raise ValueError(f"{path}: no YYYYMMDD in the file name and no trading_day given")
            if "UpdateTime" in header:
                cols = {name: header.index(name) for name in SHORT_COLUMNS if name in header}
                if "LastPrice" not in cols:
                    raise ValueError(f"{path}: header has no LastPrice column")
                rows: Iterator[tuple[int, list[str]]] = enumerate(reader, start=2)
            else:  # headless: the first line is data
                cols = {name: i for i, name in enumerate(SHORT_COLUMNS)}
                rows = _chain_first(first, reader)
            yield from self._read_short(path, match.group("instrument"), day, cols, rows)

    def _limited(self, rows: Iterator[tuple[int, list[str]]]) -> Iterator[tuple[int, list[str]]]:
        for n, item in enumerate(rows):
            if self.max_rows_per_file is not None and n >= self.max_rows_per_file:
                return
            self.stats["rows_read"] += 1
            yield item

    def _read_short(
        self,
        path: Path,
        instrument: str,
        day: date,
        cols: dict[str, int],
        rows: Iterator[tuple[int, list[str]]],
    ) -> Iterator[Row]:
        nan = float("nan")

        def get(fields: list[str], name: str) -> str | None:
            i = cols.get(name)
            return fields[i] if i is not None and i < len(fields) else None

        for line, fields in self._limited(rows):
            try:
                seconds = _seconds(get(fields, "UpdateTime") or "")
                last = _last(get(fields, "LastPrice"))
            except BadRow as exc:
                self._reject(f"{path.name}:{line}", str(exc))
                continue
            ts = _epoch(calendar_day(day, seconds), seconds)
            yield Row(
                ts, instrument, last, _number(get(fields, "Volume")),
                _number(get(fields, "OpenInterest")), _price(get(fields, "BidPrice1")),
                _price(get(fields, "AskPrice1")), nan, nan, nan,
            )  # fmt: skip

    def _read_full(self, path: Path, header: list[str], reader: Any) -> Iterator[Row]:
        idx = {name: i for i, name in enumerate(header)}
        for required in ("UpdateTime", "InstrumentID", "LastPrice"):
            if required not in idx:
                raise ValueError(f"{path}: header has no {required} column")

        def get(fields: list[str], name: str) -> str | None:
            i = idx.get(name)
            return fields[i] if i is not None and i < len(fields) else None

        for line, fields in self._limited(enumerate(reader, start=2)):
            try:
                seconds = _seconds(get(fields, "UpdateTime") or "")
                last = _last(get(fields, "LastPrice"))
                instrument = (get(fields, "InstrumentID") or "").strip()
                if not instrument:
                    raise BadRow("no InstrumentID")
                trading = get(fields, "TradingDay")
                action = get(fields, "ActionDay")
                tday = _day(trading) if trading else self._file_day(path)
                if action and not (
                    trading and action.strip() == trading.strip() and seconds >= 18 * 3600
                ):
                    day = _day(action)
                elif tday is not None:
                    day = calendar_day(tday, seconds)
                else:
                    raise BadRow("no TradingDay/ActionDay and no day in the file name")
            except BadRow as exc:
                self._reject(f"{path.name}:{line}", str(exc))
                continue
            yield Row(
                _epoch(day, seconds), instrument, last, _number(get(fields, "Volume")),
                _number(get(fields, "OpenInterest")), _price(get(fields, "BidPrice1")),
                _price(get(fields, "AskPrice1")), _price(get(fields, "UpperLimitPrice")),
                _price(get(fields, "LowerLimitPrice")), _price(get(fields, "PreSettlementPrice")),
            )  # fmt: skip

    def rows(self) -> Iterator[Row]:
        """All rows of all files, merged by time."""
        return heapq.merge(*(self.read_file(f) for f in self.files), key=lambda r: r.ts)

    # -- publishing ------------------------------------------------------------------------
    def _batches(self) -> Iterator[list[Row]]:
        """Rows grouped into frames: one batch_ms window of data time × speed, or max_batch."""
        window = None if self.speed is None else self.batch_ms / 1000 * self.speed
        batch: list[Row] = []
        start = 0.0
        for row in self.rows():
            if batch and (
                len(batch) >= self.max_batch or (window is not None and row.ts - start >= window)
            ):
                yield batch
                batch = []
            if not batch:
                start = row.ts
            batch.append(row)
        if batch:
            yield batch

    def run_blocking(self) -> dict[str, Any]:
        """Bind, publish everything (or until stop()), close; returns stats."""
        own = self._pub is None
        if own:
            self._bind()
        assert self._pub is not None
        try:
            if self.warmup_s > 0:
                self._stop.wait(self.warmup_s)
            wall0 = data0 = None
            for batch in self._batches():
                if self._stop.is_set():
                    break
                if self.speed is not None:
                    if wall0 is None:
                        wall0, data0 = time.monotonic(), batch[0].ts
                    due = wall0 + (batch[0].ts - data0) / self.speed
                    delay = due - time.monotonic()
                    if delay > 0 and self._stop.wait(delay):
                        break
                frame = encode_ticks(to_batch(batch))
                self.stats["ticks_sent"] += len(batch)  # counted before the send (as the sim)
                self.stats["batches_sent"] += 1
                self._pub.send_multipart([b"T", frame])
            self.stats["done"] = True
        finally:
            if own:
                self._close()
        return self.stats

    def _bind(self) -> None:
        self._pub = zmq.Context.instance().socket(zmq.PUB)
        self._pub.setsockopt(zmq.SNDHWM, 100_000)
        try:
            self._pub.bind(self.pub_endpoint)
        except zmq.ZMQError:
            self._close()
            raise

    def _close(self) -> None:
        if self._pub is not None:
            self._pub.close(linger=0)
            self._pub = None

    def start(self) -> CsvReplayPublisher:
        self._stop.clear()
        self._bind()  # in the caller's thread, so a bad endpoint raises here
        self._thread = threading.Thread(target=self._run, name="csv-replay", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self.run_blocking()
        finally:
            self._close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the replay to finish; True when it did."""
        if self._thread is not None:
            self._thread.join(timeout)
        return bool(self.stats["done"])

    def __enter__(self) -> CsvReplayPublisher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Replay CTP tick CSVs as fengkong tick frames.")
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--endpoint", default="tcp://127.0.0.1:21701")
    parser.add_argument("--speed", type=float, default=1.0, help="0 = as fast as possible")
    parser.add_argument("--trading-day", default=None, help="YYYYMMDD for files without one")
    args = parser.parse_args(argv)
    pub = CsvReplayPublisher(
        args.endpoint,
        args.files,
        speed=args.speed or None,
        trading_day=args.trading_day,
        warmup_s=1.0,
    )
    try:
        stats = pub.run_blocking()
    except KeyboardInterrupt:
        stats = pub.stats
    print(stats, *pub.rejects, sep="\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
