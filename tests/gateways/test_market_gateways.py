"""Market gateways over real ZeroMQ: the simulated exchange and CSV replay."""

from __future__ import annotations

import gzip
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import zmq

from gateways.market.replay import BEIJING, CsvReplayPublisher, calendar_day
from gateways.sim.exchange import SimExchange, main_instruments
from infra.codec import decode_ticks
from infra.specs import load_contract_table
from rules.model import TickBatch
from tests.zmq_util import free_tcp_endpoint

TICKS = Path("/work/shared/data/ticks")


@pytest.fixture(scope="module")
def table():
    return load_contract_table()


def _sub(endpoint: str) -> zmq.Socket:
    sock = zmq.Context.instance().socket(zmq.SUB)
    sock.setsockopt(zmq.SUBSCRIBE, b"T")
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    return sock


def _collect(sock: zmq.Socket, *, seconds: float, until=None) -> list[TickBatch]:
    """Tick batches received within `seconds` (or until `until(batches)` is true)."""
    out: list[TickBatch] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if sock.poll(50):
            topic, payload = sock.recv_multipart()
            assert topic == b"T"
            out.append(decode_ticks(payload))
            if until is not None and until(out):
                break
    return out


def _on_grid(values: np.ndarray, tick: np.ndarray) -> bool:
    return bool(np.allclose(np.round(values / tick) * tick, values, rtol=0, atol=1e-6))


# -- simulated exchange --------------------------------------------------------------------
def test_main_instruments_spread_across_products(table):
    picked = main_instruments(table, 60)
    assert len(picked) == len(set(picked)) == 60
    assert picked == main_instruments(table, 60)
    assert picked[0] == "rb2601" and "SR601" in picked and "IF2601" in picked
    # One contract per product in table order until n runs out (88 products since issue 11).
    assert {table.spec(i).product for i in picked} == set(table.products()[:60])
    assert {"rb", "hc", "i", "j", "jm"} <= {table.spec(i).product for i in picked}


def test_sim_exchange_publishes_ticks_inside_limits(table):
    instruments = main_instruments(table, 20)
    endpoint = free_tcp_endpoint()
    sub = _sub(endpoint)
    try:
        with SimExchange(endpoint, instruments, table, ticks_per_contract_hz=20, batch_ms=20) as ex:
            batches = _collect(sub, seconds=3.0, until=lambda b: sum(map(len, b)) > 300)
            assert ex.stats["batches_sent"] >= len(batches) > 0
    finally:
        sub.close()
    assert sum(map(len, batches)) > 300
    for batch in batches:
        names = batch.names()
        assert set(names) <= set(instruments)
        tick = np.array([table.spec(n).tick_size for n in names])
        assert np.all(batch.lower_limit <= batch.last) and np.all(batch.last <= batch.upper_limit)
        assert _on_grid(batch.last, tick)
        assert np.all(batch.bid <= batch.last) and np.all(batch.last <= batch.ask)
        assert np.all(np.isfinite(batch.pre_settlement)) and np.all(batch.volume > 0)
        assert np.all(np.abs(batch.exchange_ts - time.time()) < 10)


def test_shock_moves_products_and_big_shock_locks_at_limit(table):
    instruments = ["rb2601", "rb2605", "cu2601"]
    ex = SimExchange(free_tcp_endpoint(), instruments, table, batch_ms=50, seed=3)
    for _ in range(5):
        ex.step()
    before = ex.prices()
    assert ex.shock(["rb"], -0.03, over_s=0.5) == ["rb2601", "rb2605"]
    for _ in range(10):  # 0.5 s of intervals: the whole move
        ex.step()
    after = ex.prices()
    for name in ("rb2601", "rb2605"):
        assert after[name] / before[name] - 1 == pytest.approx(-0.03, abs=0.004)
    assert after["cu2601"] / before["cu2601"] - 1 == pytest.approx(0, abs=0.01)

    ex.shock(["rb"], -0.25, over_s=0.2)  # beyond the 5% limit
    for _ in range(4):
        ex.step()
    _upper, lower = ex.limits("rb2601")
    assert lower == pytest.approx(ex.pre_settlement("rb2601") * 0.95, abs=1.0)
    locked: list[float] = []
    for _ in range(40):  # the walk goes on, the contract stays locked
        batch = ex.step()
        locked += [p for n, p in zip(batch.names(), batch.last, strict=True) if n == "rb2601"]
    assert locked and set(locked) == {lower}
    assert ex.price("rb2601") == lower

    ex.shock(["rb"], 0.02, over_s=0.1)  # a shock off the limit unlocks it
    for _ in range(3):
        ex.step()
    assert ex.price("rb2601") > lower


def test_sim_exchange_unknown_instrument_fails_fast(table):
    with pytest.raises(KeyError):
        SimExchange(free_tcp_endpoint(), ["zz2601"], table)


# -- CSV replay ----------------------------------------------------------------------------
FULL_HEADER = (
    "TradingDay,ActionDay,UpdateTime,ExchangeID,InstrumentID,LastPrice,OpenPrice,HighestPrice,"
    "LowestPrice,SettlementPrice,UpperLimitPrice,LowerLimitPrice,Volume,LastVolume,Turnover,"
    "LastTurnover,OpenInterest,DiffInterest,PreClosePrice,PreSettlementPrice,PreOpenInterest,"
    "BidPrice1,BidVolume1,AskPrice1,AskVolume1"
)
SHORT_HEADER = "UpdateTime,BidPrice1,BidVolume1,AskPrice1,AskVolume1,LastPrice,Volume,OpenInterest"


def _full_row(time_s: str, instrument: str, last: str, volume: int) -> str:
    return (
        f"20210104,20210104,{time_s},CFFEX,{instrument},{last},5230,5232,5229,0,5737.8,4694.6,"
        f"{volume},1,0,0,90767,0,5227,5216.2,90826,5230,1,5230.8,2"
    )


def _write_fixtures(tmp_path: Path) -> list[Path]:
    full = tmp_path / "CFFEX.IF2101_ticks_20210104_wtpy.csv.gz"
    lines = [
        FULL_HEADER,
        _full_row("09:30:00.400", "IF2101", "5230.8", 311),
        _full_row("09:30:01.400", "IF2101", "nan", 312),  # bad: NaN price
        _full_row("09:30:02.400", "IF2101", "5231.2", 320),
        _full_row("9:3x:00", "IF2101", "5231.2", 321),  # bad: time
    ]
    with gzip.open(full, "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    short = tmp_path / "rb2105_20210104.csv"  # a Monday: the night rows are Friday night
    short.write_text(
        SHORT_HEADER + "\n"
        "21:00:00.500,4300,1,4301,2,4301,10,1000\n"
        "23:00:00.000,4310,1,4311,2,4311,90,1000\n"
        "09:30:01.000,4320,1,4321,2,4320,120,1000\n"
        "09:30:01.900,4320,1,4321,2,-1,121,1000\n"  # a negative price is a price
    )
    headless = tmp_path / "SR105_20210104.csv"  # same 8 columns, no header
    headless.write_text(
        "09:30:00.900,5300,3,5301,4,5301,7,200\n09:30:02.000,0,0,5302,4,5302,8,200\n"
    )
    return [full, short, headless]


def test_replay_merges_formats_in_time_order(tmp_path):
    files = _write_fixtures(tmp_path)
    endpoint = free_tcp_endpoint()
    sub = _sub(endpoint)
    try:
        pub = CsvReplayPublisher(endpoint, files, speed=None, warmup_s=0.5)
        with pub:
            assert pub.wait(timeout=5)
            batches = _collect(sub, seconds=2.0, until=lambda b: sum(map(len, b)) >= 8)
    finally:
        sub.close()
    assert pub.stats["rows_read"] == 10 and pub.stats["bad_rows"] == 2
    assert pub.stats["ticks_sent"] == 8 and pub.stats["done"] is True
    assert len(pub.rejects) == 2 and any(":3:" in r and "NaN" in r for r in pub.rejects)
    ticks = [
        (n, t, p) for b in batches for n, t, p in zip(b.names(), b.exchange_ts, b.last, strict=True)
    ]
    assert [n for n, _, _ in ticks] == [
        "rb2105",
        "rb2105",
        "IF2101",
        "SR105",
        "rb2105",
        "rb2105",
        "SR105",
        "IF2101",
    ]
    assert [p for n, _, p in ticks if n == "rb2105"][-1] == -1.0
    ts = [t for _, t, _ in ticks]
    assert ts == sorted(ts)
    friday_night = datetime(2021, 1, 1, 21, 0, 0, 500000, tzinfo=BEIJING).timestamp()
    assert ts[0] == pytest.approx(friday_night)
    assert ts[2] == pytest.approx(
        datetime(2021, 1, 4, 9, 30, 0, 400000, tzinfo=BEIJING).timestamp()
    )
    full = [b for b in batches if "IF2101" in b.instruments][0]
    i = full.names().index("IF2101")
    assert full.upper_limit[i] == 5737.8 and full.pre_settlement[i] == 5216.2
    bids = [bid for b in batches for n, bid in zip(b.names(), b.bid, strict=True) if n == "SR105"]
    assert bids[0] == 5300 and np.isnan(bids[1])  # bid 0 means none, not a bad row


def test_replay_paces_at_speed(tmp_path):
    files = _write_fixtures(tmp_path)[:1]  # IF2101: two good ticks 2 s apart
    pub = CsvReplayPublisher(free_tcp_endpoint(), files, speed=8.0, warmup_s=0)
    started = time.monotonic()
    stats = pub.run_blocking()
    elapsed = time.monotonic() - started
    assert stats["batches_sent"] == 2 and stats["done"]
    assert 0.2 <= elapsed < 1.5  # 2 s of data at 8× is 0.25 s


def test_calendar_day_of_night_rows():
    monday = datetime(2017, 11, 13).date()
    assert calendar_day(monday, 21 * 3600).isoformat() == "2017-11-10"
    assert calendar_day(monday, 1 * 3600).isoformat() == "2017-11-11"
    assert calendar_day(monday, 10 * 3600) == monday


@pytest.mark.parametrize(
    "name",
    ["CFFEX.IF2101_ticks_20210104_wtpy.csv", "CFFEX.IF_HOT_ticks_20210104-20210118_wtpy.csv.gz",
     "cn_20171113_selected/rb1801_20171113.csv"],
)  # fmt: skip
def test_replay_real_files(name):
    path = TICKS / name
    if not path.exists():
        pytest.skip(f"{path} not present (the shared tick data set is not on this machine)")
    pub = CsvReplayPublisher(
        free_tcp_endpoint(), [path], speed=None, max_rows_per_file=2000, warmup_s=0
    )
    rows = list(pub.rows())
    assert pub.stats["rows_read"] == 2000 and len(rows) + pub.stats["bad_rows"] == 2000
    assert len(rows) > 1900
    assert all(r.last > 0 for r in rows)
    ts = np.array([r.ts for r in rows])
    assert np.all(np.diff(ts) > -1.0)  # recorders jitter by milliseconds, never by seconds
    assert np.all(ts > datetime(2017, 1, 1, tzinfo=BEIJING).timestamp())
    stats = pub.run_blocking()
    assert stats["ticks_sent"] == len(rows) and stats["done"]
