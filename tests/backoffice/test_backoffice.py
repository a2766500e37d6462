"""Back-office files: settlement-bill columns (GB18030, Chinese headers) and English ones, bad
rows named by file, line and reason, the rest on a real account bus; the watched folder loads a
file once, after it stopped growing, and not again after a restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.cli import main
from gateways.accounts.bus import AccountBus, AccountBusClient
from gateways.backoffice.loader import load_files
from gateways.backoffice.watch import BackofficeWatcher, parse
from infra.specs import load_contract_table
from rules.book import AccountBook
from rules.sharding import BUCKETS
from tests.zmq_util import free_tcp_endpoint, wait_until

ACCOUNTS = (
    "客户号,组织,上日结存,当日存取合计,平仓盈亏,持仓盈亏,手续费,保证金占用,客户权益\n"
    'A001,grpA/sub1/u1,"1,000,000.00",-20000,1500,300,45.5,80000,981754.5\n'
    "A002,grpA/sub1/u2,500000,0,0,0,0,0,500000\n"
    "A003,grpA/sub1/u3,abc,0,0,0,0,0,0\n"
)
POSITIONS = (
    "account_id,instrument,direction,volume,today_volume,cost_price\n"
    "A001,rb2601,多,10,2,3050\n"
    "A001,cu2601,short,1,0,80000\n"
    "A002,rb2601,x,1,0,3000\n"
    "A009,rb2601,long,1,0,3000\n"
)
FLOWS = (
    "账号,类型,金额,时间\n"
    "A002,入金,10000,2025-12-01 10:00:00\n"
    "A002,出金,oops,2025-12-01 11:00:00\n"
    "A001,出金,5000,2025-12-01 13:00:00\n"
)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "accounts_20251201.csv").write_bytes(ACCOUNTS.encode("gb18030"))
    (tmp_path / "positions_20251201.csv").write_text(POSITIONS, encoding="utf-8-sig")
    (tmp_path / "出入金_20251201.csv").write_text(FLOWS, encoding="utf-8")
    return tmp_path


def test_loader_maps_settlement_bill_fields_and_names_bad_rows(folder):
    result = load_files(sorted(folder.iterdir()))
    assert result.problems == [
        "accounts_20251201.csv:4: pre_balance 'abc' is not a number",
        "positions_20251201.csv:4: direction 'x' is not long/short (多/空, 买/卖)",
        "出入金_20251201.csv:3: amount 'oops' is not a number",
        "positions_20251201.csv:5: account A009 is in no accounts file loaded with it",
    ]
    snaps = {r["account_id"]: r for r in result.records if r["type"] == "snapshot"}
    a1 = snaps["A001"]
    assert (a1["pre_balance"], a1["deposit"], a1["withdraw"]) == (1_000_000.0, 0.0, 20_000.0)
    assert (a1["close_profit"], a1["commission"], a1["group_path"]) == (
        1500.0,
        45.5,
        "grpA/sub1/u1",
    )
    assert a1["backoffice_margin"] == 80_000.0 and a1["backoffice_equity"] == 981_754.5
    assert a1["positions"] == [
        {
            "instrument": "rb2601",
            "direction": "long",
            "volume": 10.0,
            "today_volume": 2.0,
            "cost_price": 3050.0,
        },
        {
            "instrument": "cu2601",
            "direction": "short",
            "volume": 1.0,
            "today_volume": 0.0,
            "cost_price": 80000.0,
        },
    ]
    assert snaps["A002"]["positions"] == []
    flows = [r for r in result.records if r["type"] != "snapshot"]
    assert [(r["type"], r["account_id"], r["amount"]) for r in flows] == [
        ("deposit", "A002", 10_000.0),
        ("withdraw", "A001", 5_000.0),
    ]
    assert result.records[0]["type"] == "snapshot"  # snapshots before the day's transfers
    # the records are what the shards' book takes
    book = AccountBook(load_contract_table())
    for rec in result.records:
        if rec["type"] == "snapshot":
            book.apply_snapshot(rec)
    assert book.account_view("A001")["positions"]


def test_command_loads_onto_a_real_account_bus(folder, capsys):
    endpoints = (free_tcp_endpoint(), free_tcp_endpoint(), free_tcp_endpoint())
    with (
        AccountBus(*endpoints) as bus,
        AccountBusClient(endpoints[1], endpoints[2], list(range(BUCKETS))) as client,
    ):
        code = main(["backoffice", "load", str(folder), "--endpoint", bus.inbound_endpoint])
        out = capsys.readouterr().out
        assert code == 1  # some rows were bad; the rest went out
        assert "accounts_20251201.csv:4: pre_balance 'abc' is not a number" in out
        assert "sent 2 deposit" not in out and "2 snapshot" in out
        got: list[dict] = []
        assert wait_until(lambda: bool(got.extend(client.poll(20))) or len(got) >= 4)
    assert sorted(r["type"] for r in got) == ["deposit", "snapshot", "snapshot", "withdraw"]
    assert {r["account_id"] for r in got} == {"A001", "A002"}


def test_dry_run_sends_nothing(folder, capsys):
    assert main(["backoffice", "load", str(folder / "出入金_20251201.csv"), "--dry-run"]) == 1
    assert "would send 1 deposit, 1 withdraw" in capsys.readouterr().out


def test_watched_folder_loads_stable_files_once_and_survives_a_restart(tmp_path):
    sent: list[dict] = []
    watcher = BackofficeWatcher(tmp_path, sent.extend, scan_s=0.01)
    (tmp_path / "fund_flows_1.csv").write_text("account_id,kind,amount\nA1,deposit,100\n")
    watcher.scan()
    assert sent == []  # first sight: maybe still being written
    watcher.scan()
    assert [r["amount"] for r in sent] == [100.0]
    watcher.scan()
    assert len(sent) == 1
    restarted = BackofficeWatcher(tmp_path, sent.extend, scan_s=0.01)
    restarted.scan()
    restarted.scan()
    assert len(sent) == 1  # remembered in the folder
    (tmp_path / "fund_flows_1.csv").write_text(
        "account_id,kind,amount\nA1,deposit,100\nA1,withdraw,30\n"
    )
    restarted.scan()
    restarted.scan()
    assert [r["type"] for r in sent[1:]] == ["deposit", "withdraw"]  # a changed file loads again
    assert restarted.stats["files"] == 1


def test_backoffice_table_is_validated(tmp_path):
    from gateways.backoffice.watch import register
    from infra.config import ConfigError, from_dict

    register()
    assert parse({"watch_dir": str(tmp_path)}).watch_dir == str(tmp_path.resolve())
    with pytest.raises(
        ConfigError, match="backoffice.scan: unknown key \\(did you mean 'scan_s'\\?\\)"
    ):
        from_dict({"backoffice": {"scan": 1}})
    with pytest.raises(ConfigError, match="backoffice.watch_dir: .* is not a folder"):
        from_dict({"backoffice": {"watch_dir": str(tmp_path / "nope")}})
