"""CTP tables as contract overrides: commission-rate CSVs set fees, instrument CSVs add products."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from infra.ctp_tables import (
    CTP_COMMISSION_FIELDS,
    CTP_INSTRUMENT_FIELDS,
    ctp_csv_kind,
    load_ctp_commission_csv,
    read_ctp_instruments,
)
from infra.specs import load_contract_table, new_product_record
from rules.contracts import ContractTable, spec_from_record

SHARED_DATA = Path(
    os.environ.get("FENGKONG_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data")
)
REAL_CTP = SHARED_DATA / "specs" / "ctp_instruments_20171113_MagicEthan.csv"
# A broker's export: CTP's own columns around the six rates (fengkong ignores the others).
HEADER = ["BrokerID", "InvestorID", "InvestorRange", *CTP_COMMISSION_FIELDS, "ExchangeID"]


def commission_csv(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for instrument, *rates in rows:
            writer.writerow(["9999", "000001", "1", instrument, *rates, ""])
    return path


#            InstrumentID  open$      open#  close$     close#  today$     today#
FEE_ROWS = [
    ["rb", "0.00011", "0", "0.00011", "0", "0.00055", "0"],  # product row: wins
    ["rb2605", "0.0002", "0", "0.0002", "0", "0.0002", "0"],
    ["AP605", "0", "10", "0", "10", "0", "40"],  # near delivery: raised
    ["AP610", "0", "5.01", "0", "5.01", "0", "20.01"],
    ["AP701", "0", "5.01", "0", "5.01", "0", "20.01"],
    ["IF2606", "0.000023", "0", "0.000023", "0", "0.00023", "0"],
    ["m2609-C-3000", "0", "1", "0", "1", "0", "1"],  # an option: skipped
    ["zz2605", "0", "1", "0", "1", "0", "1"],  # not in the table: ignored by the loader
    ["T2609", "0", "0", "0", "0", "0", "0"],  # free
]


def test_commission_csv_maps_rates_to_fees(tmp_path: Path) -> None:
    path = commission_csv(tmp_path / "commission.csv", FEE_ROWS)
    assert ctp_csv_kind(path) == "commission"
    records = {r["product"]: r for r in load_ctp_commission_csv(path)}
    assert set(records) == {"rb", "AP", "IF", "zz", "T"}
    assert records["rb"] == {
        "product": "rb",
        "fee_by": "turnover",
        "fee_open": 0.00011,
        "fee_close": 0.00011,
        "fee_close_today": 0.00055,
    }
    assert records["AP"] == {  # the fees most of its contracts carry
        "product": "AP",
        "fee_by": "volume",
        "fee_open": 5.01,
        "fee_close": 5.01,
        "fee_close_today": 20.01,
    }
    assert records["IF"]["fee_by"] == "turnover" and records["IF"]["fee_close_today"] == 0.00023
    assert records["T"]["fee_by"] == "volume" and records["T"]["fee_open"] == 0.0


def test_commission_csv_overrides_the_default_fees(tmp_path: Path) -> None:
    path = commission_csv(tmp_path / "commission.csv", FEE_ROWS)
    default = load_contract_table()
    table = load_contract_table([path])
    rb, ap = table.spec("rb2610"), table.spec("AP610")
    assert (rb.fee_by, rb.fee_open, rb.fee_close, rb.fee_close_today) == (
        "turnover",
        0.00011,
        0.00011,
        0.00055,
    )
    assert (ap.fee_by, ap.fee_open, ap.fee_close_today) == ("volume", 5.01, 20.01)
    assert table.spec("T").fee_open == 0.0 and default.spec("T").fee_open == 3.0
    # Only fees change; products it does not list keep theirs; it creates no product.
    assert (
        rb.margin_rate == default.spec("rb").margin_rate
        and rb.sessions == default.spec("rb").sessions
    )
    assert table.spec("cu") == default.spec("cu")
    assert "zz" not in table and len(table) == len(default)


def test_commission_csv_then_toml_later_file_wins(tmp_path: Path) -> None:
    fees = commission_csv(tmp_path / "commission.csv", FEE_ROWS)
    toml = tmp_path / "fees.toml"
    toml.write_text('[[contract]]\nproduct = "rb"\nfee_close_today = 0.0001\n', encoding="utf-8")
    table = load_contract_table([fees, toml])
    assert table.spec("rb").fee_close_today == 0.0001 and table.spec("rb").fee_open == 0.00011
    assert load_contract_table([toml, fees]).spec("rb").fee_close_today == 0.00055


def test_fee_override_in_toml_switches_basis(tmp_path: Path) -> None:
    toml = tmp_path / "fees.toml"
    toml.write_text(
        '[[contract]]\nproduct = "cu"\nfee_by = "volume"\nfee_open = 6\nfee_close = 6\n'
        "fee_close_today = 12\n",
        encoding="utf-8",
    )
    cu = load_contract_table([toml]).spec("cu")
    assert (cu.fee_by, cu.fee_open, cu.fee_close, cu.fee_close_today) == ("volume", 6, 6, 12)
    bad = tmp_path / "bad.toml"
    bad.write_text('[[contract]]\nproduct = "cu"\nfee_open = 6\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.toml: .*'cu', key 'fee_open': is a fraction"):
        load_contract_table([bad])  # cu is by turnover: 6 would be 600% of turnover


@pytest.mark.parametrize(
    ("row", "why"),
    [
        (
            ["cu2605", "0.00005", "3", "0.00005", "0", "0", "0"],
            "line 3: Open is charged both by money (5e-05) and by volume (3.0)",
        ),
        (
            ["cu2605", "0.00005", "0", "0.00005", "0", "0", "10"],
            "line 3: mixes bases (Open, Close by money, CloseToday by volume)",
        ),
        (
            ["cu2605", "abc", "0", "0", "0", "0", "0"],
            "line 3: OpenRatioByMoney 'abc' is not a number",
        ),
        (
            ["cu2605", "0", "-1", "0", "0", "0", "0"],
            "line 3: OpenRatioByVolume must be zero or positive",
        ),
        (
            ["cu2605", "0", "0", "0", "0", "1.7976931348623157e+308", "0"],
            "line 3: CloseTodayRatioByMoney is unset",
        ),
        (["cu2605", "1.5", "0", "0", "0", "0", "0"], "line 3: OpenRatioByMoney 1.5 is a fraction"),
        (["cu", "0", "3", "0", "3", "0", "3"], "line 3: a second row for product 'cu'"),
    ],
)
def test_bad_commission_rows_name_file_line_and_reason(
    tmp_path: Path, row: list[str], why: str
) -> None:
    path = commission_csv(tmp_path / "broker_fees.csv", [["cu", "0", "3", "0", "3", "0", "0"], row])
    with pytest.raises(ValueError) as info:
        load_contract_table([path])
    assert str(info.value).startswith(f"{path}: ") and why in str(info.value)


def test_commission_csv_shape_errors(tmp_path: Path) -> None:
    header = [f for f in HEADER if f != "CloseTodayRatioByVolume"]
    path = tmp_path / "partial.csv"
    path.write_text(",".join(header) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"partial\.csv: header lacks CTP commission column"):
        load_ctp_commission_csv(path)
    short = tmp_path / "short.csv"
    short.write_text(",".join(HEADER) + "\n9999,1,rb,0\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"short\.csv: line 2: 4 columns, expected 11"):
        load_ctp_commission_csv(short)


def instrument_csv(path: Path, rows: list[dict[str, str]], extra: tuple[str, ...] = ()) -> Path:
    header = [*CTP_INSTRUMENT_FIELDS, *extra]
    with path.open("w", encoding="gbk", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for row in rows:
            values = dict.fromkeys(header, "1") | row
            writer.writerow([values[f] for f in header])
    return path


def contract(
    instrument: str, product: str, exchange: str, name: str, **more: str
) -> dict[str, str]:
    return {
        "InstrumentID": instrument,
        "ExchangeID": exchange,
        "InstrumentName": name,
        "ProductID": product,
        "ProductClass": "1",
        "VolumeMultiple": "20",
        "PriceTick": "2",
        "ExpireDate": "2027" + instrument[-2:] + "15",
        "LongMarginRatio": "0.12",
        **more,
    }


def test_instrument_csv_adds_a_product_it_knows(tmp_path: Path) -> None:
    path = instrument_csv(
        tmp_path / "instruments.csv",
        [
            contract("xy2701", "xy", "DCE", "新品种2701", PreSettlementPrice="5120"),
            contract("xy2705", "xy", "DCE", "新品种2705", PreSettlementPrice="5080"),
            contract(
                "QQ705", "QQ", "CZCE", "", LongMarginRatio="1.79769e+308", PreSettlementPrice=""
            ),
            contract("IX2703", "IX", "CFFEX", "某指数2703"),
        ],
        extra=("PreSettlementPrice",),
    )
    assert ctp_csv_kind(path) == "instrument"
    table = load_contract_table([path])
    xy = table.spec("xy2709")
    assert (xy.exchange, xy.name, xy.multiplier, xy.tick_size, xy.margin_rate) == (
        "DCE",
        "新品种",
        20,
        2,
        0.12,
    )
    assert xy.reference_price == 5120  # the earliest-expiring contract's price column
    assert xy.limit_rate == 0.07 and xy.unit == "未知" and not xy.has_night_session
    assert (xy.fee_open, xy.fee_close, xy.fee_close_today, xy.as_of) == (0.0, 0.0, 0.0, "")
    qq = table.spec("QQ709")
    assert qq.name == "QQ" and qq.margin_rate == 0.08  # no valid ratio: CZCE limit + 2 points
    assert qq.reference_price == 2000  # no price column value: 1000 ticks
    assert table.spec("IX2703").sessions == (("09:30", "11:30"), ("13:00", "15:00"))
    assert len(table) == len(load_contract_table()) + 3


def test_real_ctp_table_can_add_every_product_it_has() -> None:
    if not REAL_CTP.is_file():
        pytest.skip(
            f"public CTP instrument table not available at {REAL_CTP} (set FENGKONG_SHARED_DATA)"
        )
    products = read_ctp_instruments(REAL_CTP)
    assert len(products) >= 45
    specs = {p.record["product"]: spec_from_record(new_product_record(p)) for p in products}
    # SHFE and CFFEX name a contract by its id: the name falls back to the product code.
    assert specs["rb"].name == "rb" and specs["rb"].multiplier == 10
    assert specs["m"].name == "豆粕" and specs["SR"].name == "白糖"  # "豆粕1805", "白糖5月"
    assert specs["IF"].name == "IF" and specs["IF"].sessions[0] == ("09:30", "11:30")
    assert specs["SR"].exchange == "CZCE" and specs["SR"].limit_rate == 0.06
    # As the only table: a contract table of the 2017 products built from CTP alone.
    table = ContractTable(specs.values())
    assert table.spec("cu1801").tick_size == 10 and table.spec("au1712").tick_size == 0.05
    # Over the default: every 2017 product is known, so the CSV only updates (2017 figures).
    merged = load_contract_table([REAL_CTP])
    assert len(merged) == len(load_contract_table()) and merged.spec("au").tick_size == 0.05
