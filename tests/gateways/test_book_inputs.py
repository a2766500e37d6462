"""Operating inputs: files in a watched folder and a ZeroMQ topic; bad rows named and skipped."""

from __future__ import annotations

import json
import os
import time

import zmq

from gateways.books.files import FolderWatcher, read_file
from gateways.books.topic import BookTopicSubscriber, publish
from rules.exposure import Inventory, PhysicalContract, PricePoint
from tests.zmq_util import free_tcp_endpoint, wait_until

INVENTORY_CSV = """id,commodity,quantity,business_unit,location,valuation_price
W1,rb,3000,east,Shanghai,3100
W2,rb,NaN,east,Shanghai,
,rb,100,north,Tianjin,
W3,cu,25,metals,Ningbo,80000
W4,rb,12,east
"""


def test_csv_bad_rows_name_file_line_and_reason_and_the_rest_loads(tmp_path):
    path = tmp_path / "inventory_20260302.csv"
    path.write_text(INVENTORY_CSV, encoding="utf-8")
    parsed = read_file(path)
    assert [(line, r.id) for line, r in parsed.records] == [(2, "W1"), (5, "W3")]
    assert all(isinstance(r, Inventory) for _l, r in parsed.records)
    reasons = [str(r) for r in parsed.rejects]
    assert reasons == [
        f"{path}:3: quantity is 'NaN': NaN or infinite",
        f"{path}:4: missing id",
        f"{path}:6: 4 columns, the header has 6",
    ]
    assert [r.commodity for r in parsed.rejects[:2]] == ["rb", "rb"]


def test_gbk_csv_with_kind_column(tmp_path):
    path = tmp_path / "from_excel.csv"
    text = "kind,id,commodity,side,quantity,price,delivery_date,counterparty\n"
    text += "contract,P1,rb,采购,500,3050,2026-04-15,华东钢铁\n"
    path.write_bytes(text.encode("gbk"))
    [(_line, rec)] = read_file(path).records
    assert isinstance(rec, PhysicalContract) and rec.side == 1 and rec.counterparty == "华东钢铁"


def test_json_records_carry_their_line_numbers(tmp_path):
    path = tmp_path / "contracts.json"
    records = [
        {"id": "P1", "commodity": "rb", "side": "purchase", "quantity": 500, "price": 3050,
         "delivery_date": "2026-04-15", "counterparty": "Steel Co"},
        {"id": "S1", "commodity": "rb", "side": "sale", "quantity": 200, "price": -1,
         "delivery_date": "2026-04-20", "counterparty": "Builder"},
    ]  # fmt: skip
    path.write_text(json.dumps({"kind": "contract", "records": records}, indent=2))
    parsed = read_file(path)
    assert [r.id for _l, r in parsed.records] == ["P1"]
    [reject] = parsed.rejects
    second_line = path.read_text().splitlines().index("    {", 12) + 1  # the second object
    assert reject.line == second_line and reject.reason == "price must be positive, got -1"
    lines = tmp_path / "spot.jsonl"
    lines.write_text('{"commodity": "rb", "date": "2026-03-02", "price": 3100}\n{broken\n')
    parsed = read_file(lines)
    assert isinstance(parsed.records[0][1], PricePoint)
    assert parsed.rejects[0].line == 2 and "not valid JSON" in parsed.rejects[0].reason
    unknown = tmp_path / "notes.csv"
    unknown.write_text("id,commodity,quantity\nX,rb,1\n")
    assert "no record kind" in read_file(unknown).rejects[0].reason


def test_watcher_reads_a_file_once_it_has_settled_and_again_when_it_changes(tmp_path):
    watcher = FolderWatcher(tmp_path)
    path = tmp_path / "spot.csv"
    path.write_text("commodity,date,price\nrb,2026-03-02,3100\n")
    (tmp_path / "readme.txt").write_text("not an input")
    assert watcher.changed() == []  # first sight: not settled yet
    assert watcher.changed() == [path]
    assert watcher.changed() == []
    path.write_text("commodity,date,price\nrb,2026-03-02,3105\nrb,2026-03-03,3110\n")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 1_000_000))
    assert watcher.changed() == [] and watcher.changed() == [path]


def test_zmq_topic_delivers_only_the_books_commodity():
    endpoint = free_tcp_endpoint()
    pub = zmq.Context.instance().socket(zmq.PUB)
    pub.bind(endpoint)
    got: list = []
    sub = BookTopicSubscriber(
        endpoint, ["p"], lambda src, recs, rej: got.append((recs, rej))
    ).start()
    try:
        records = [
            {"kind": "spot", "commodity": "p", "date": "2026-03-02", "price": 8000},
            {"kind": "spot", "commodity": "p", "date": "2026-03-02", "price": "n/a"},
            {"kind": "spot", "commodity": "pp", "date": "2026-03-02", "price": 7000},
        ]

        def delivered() -> bool:
            publish(pub, records)  # PUB drops until the subscription is in place: resend
            return bool(got)

        assert wait_until(delivered, 5, interval=0.1)
        recs, rejects = got[0]
        assert [(r.commodity, r.price) for _l, r in recs] == [("p", 8000.0)]  # not "pp"
        assert rejects[0].line == 2 and "price 'n/a' is not a number" in rejects[0].reason
    finally:
        sub.stop()
        pub.close(linger=0)
