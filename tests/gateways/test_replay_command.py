"""`fengkong replay FILES --speed X` publishes every tick-CSV format the backtest reads onto the
endpoint of a configured feed, where a running system's MarketFeed (here a real SUB socket on
the same endpoint) takes them."""

from __future__ import annotations

import gzip
import threading

import numpy as np

from app.cli import main
from infra.codec import decode_ticks
from tests.zmq_util import free_tcp_endpoint, wait_until

FULL = (
    "TradingDay,ActionDay,UpdateTime,ExchangeID,InstrumentID,LastPrice,UpperLimitPrice,"
    "LowerLimitPrice,Volume,OpenInterest,PreSettlementPrice,BidPrice1,BidVolume1,AskPrice1,AskVolume1\n"
    "20210104,20210104,09:30:00.400,CFFEX,IF2101,5230.8,5737.8,4694.6,311,90751,5216.2,5231.4,2,5231.6,1\n"
    "20210104,20210104,09:30:00.900,CFFEX,IF2101,5231.0,5737.8,4694.6,320,90750,5216.2,5231.0,1,5231.2,3\n"
)
SHORT = (
    "09:30:00.500,3900,10,3901,5,3900.5,1000,20000\n09:30:01.000,3901,10,3902,5,3901.5,1010,20001\n"
)


def test_replay_command_publishes_onto_a_configured_feed(tmp_path, capsys):
    import zmq

    endpoint = free_tcp_endpoint()
    config = tmp_path / "replay.toml"
    config.write_text(
        f'[[market.feeds]]\nname = "sim"\nendpoint = "{free_tcp_endpoint()}"\n'
        f'[[market.feeds]]\nname = "replay"\nendpoint = "{endpoint}"\n'
    )
    (tmp_path / "IF2101_wtpy.csv").write_text(FULL)
    with gzip.open(tmp_path / "rb1801_20210104.csv.gz", "wt") as fh:
        fh.write(SHORT)
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"T")
    sub.connect(endpoint)  # the feed connects; the replay binds
    codes: list[int] = []
    args = ["replay", str(tmp_path / "IF2101_wtpy.csv"), str(tmp_path / "rb1801_20210104.csv.gz"),
            "--config", str(config), "--feed", "replay", "--speed", "0", "--warmup", "3"]  # fmt: skip
    runner = threading.Thread(target=lambda: codes.append(main(args)))
    runner.start()
    batches = []

    def drained() -> bool:
        while sub.poll(10):
            batches.append(decode_ticks(sub.recv_multipart()[1]))
        return sum(len(b) for b in batches) >= 4

    try:
        assert wait_until(drained, timeout=20)
    finally:
        runner.join(30)
        sub.close(linger=0)
    assert codes == [0]
    names = [n for b in batches for n in b.names()]
    assert names == ["IF2101", "rb1801", "IF2101", "rb1801"]  # merged by time across files
    last = np.concatenate([b.last for b in batches])
    assert last.tolist() == [5230.8, 3900.5, 5231.0, 3901.5]
    assert "4 ticks in" in capsys.readouterr().out


def test_replay_command_says_what_is_wrong(tmp_path, capsys):
    assert main(["replay", str(tmp_path / "missing.csv"), "--endpoint", free_tcp_endpoint()]) == 2
    assert "missing.csv" in capsys.readouterr().out
    assert main(["replay", str(tmp_path / "x.csv"), "--feed", "nope"]) == 2
    assert "no [[market.feeds]] named 'nope'" in capsys.readouterr().out
