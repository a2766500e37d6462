"""Loading the packaged contract table, TOML overrides and CTP instrument tables."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from infra.specs import (
    CTP_INSTRUMENT_FIELDS,
    DEFAULT_CONTRACTS_PATH,
    load_contract_table,
    load_ctp_instrument_csv,
)
from rules.contracts import ContractTable

SHARED_DATA = Path(
    os.environ.get("FENGKONG_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data")
)
SPECS = SHARED_DATA / "specs"

REQUIRED = "rb hc i j jm cu al zn ni au ag sc fu m y p c SR CF TA MA IF IH IC T".split()
DAY = (("09:00", "10:15"), ("10:30", "11:30"), ("13:30", "15:00"))
# Ticks changed since TqSdk's 2020-06-16 table: DCE l 5 -> 1, CFFEX TS 0.005 -> 0.002.
CHANGED_SINCE_2020 = {"l": (5.0, 1.0, "DCE"), "TS": (20000.0, 0.002, "CFFEX")}


@pytest.fixture(scope="module")
def default() -> ContractTable:
    return load_contract_table()


def test_default_table_has_the_products(default: ContractTable) -> None:
    assert DEFAULT_CONTRACTS_PATH.is_file()
    assert len(default) >= 30
    assert set(REQUIRED) <= set(default.products())
    assert {s.exchange for s in default} == {"SHFE", "INE", "DCE", "CZCE", "CFFEX", "GFEX"}


@pytest.mark.parametrize(
    ("product", "multiplier", "tick"),
    [
        ("rb", 10, 1),
        ("cu", 5, 10),
        ("au", 1000, 0.02),
        ("ag", 15, 1),
        ("sc", 1000, 0.1),
        ("i", 100, 0.5),
        ("jm", 60, 0.5),
        ("SR", 10, 1),
        ("TA", 5, 2),
        ("IF", 300, 0.2),
        ("IC", 200, 0.2),
        ("T", 10000, 0.005),
    ],
)
def test_default_figures(
    default: ContractTable, product: str, multiplier: float, tick: float
) -> None:
    spec = default.spec(product)
    assert (spec.multiplier, spec.tick_size) == (multiplier, tick)


def test_default_figures_are_sane(default: ContractTable) -> None:
    for spec in default:
        assert 0.005 <= spec.margin_rate <= 0.25, spec.product
        assert 0.005 <= spec.limit_rate <= 0.2, spec.product
        assert spec.limit_rate <= spec.margin_rate, spec.product  # margin covers a limit move
        assert spec.reference_price > 10 * spec.tick_size, spec.product
        assert spec.commodity == spec.product and spec.name and spec.unit


def test_default_sessions(default: ContractTable) -> None:
    assert default.spec("rb").sessions == (("21:00", "23:00"), *DAY)
    assert default.spec("cu").sessions[0] == ("21:00", "01:00")
    assert default.spec("au").sessions[0] == ("21:00", "02:30")
    assert default.spec("sc").sessions[0] == ("21:00", "02:30")
    assert default.spec("IF").sessions == (("09:30", "11:30"), ("13:00", "15:00"))
    assert default.spec("T").sessions == (("09:30", "11:30"), ("13:00", "15:15"))
    for spec in default:
        if spec.exchange in ("CFFEX", "GFEX"):
            assert not spec.has_night_session, spec.product
        else:
            assert spec.sessions[-3:] == DAY, spec.product


def test_override_a_single_key(tmp_path: Path, default: ContractTable) -> None:
    override = tmp_path / "broker.toml"
    override.write_text('[[contract]]\nproduct = "rb"\nmargin_rate = 0.12\n', encoding="utf-8")
    table = load_contract_table([override])
    assert table.spec("rb2601").margin_rate == 0.12
    assert (
        table.spec("rb").multiplier == 10
        and table.spec("rb").limit_rate == default.spec("rb").limit_rate
    )
    assert table.spec("cu") == default.spec("cu")


def test_later_overrides_win_and_can_add_products(tmp_path: Path) -> None:
    first = tmp_path / "a.toml"
    first.write_text('[[contract]]\nproduct = "rb"\nmargin_rate = 0.12\n', encoding="utf-8")
    second = tmp_path / "b.toml"
    second.write_text(
        '[[contract]]\nproduct = "rb"\nmargin_rate = 0.15\n\n'
        '[[contract]]\nproduct = "bu"\nexchange = "SHFE"\nname = "石油沥青"\nmultiplier = 10\n'
        'tick_size = 1\nmargin_rate = 0.10\nlimit_rate = 0.08\nunit = "吨"\nreference_price = 3400\n'
        'sessions = [["21:00", "23:00"], ["09:00", "10:15"], ["10:30", "11:30"], ["13:30", "15:00"]]\n',
        encoding="utf-8",
    )
    table = load_contract_table([str(first), second])
    assert table.spec("rb").margin_rate == 0.15
    assert table.spec("bu2606").name == "石油沥青"


def test_broken_override_names_file_record_and_key(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text(
        '[[contract]]\nproduct = "cu"\nmargin_rate = 0.09\n\n[[contract]]\nproduct = "rb"\ntick_size = -1\n',
        encoding="utf-8",
    )
    with pytest.raises(ValueError) as info:
        load_contract_table([broken])
    message = str(info.value)
    assert (
        str(broken) in message
        and "#2" in message
        and "'rb'" in message
        and "'tick_size'" in message
    )


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('[[contract]]\nproduct = "rb"\nmargin_rate = \n', "not valid TOML"),
        ('[[contracts]]\nproduct = "rb"\n', "unknown top-level key 'contracts'"),
        ('contract = "rb"\n', "array of tables"),
        ('[[contract]]\nproduct = "rb"\ntick = 1\n', "'tick': unknown key"),
        ('[[contract]]\nproduct = "zz"\nmargin_rate = 0.1\n', "'zz'.*missing"),
    ],
)
def test_bad_override_files(tmp_path: Path, text: str, why: str) -> None:
    path = tmp_path / "override.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=why) as info:
        load_contract_table([path])
    assert str(path) in str(info.value)


def test_missing_override_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.toml"):
        load_contract_table([tmp_path / "nope.toml"])


def ctp_row(
    instrument: str, product: str, cls: str, mult: str, tick: str, expire: str, margin: str
) -> list[str]:
    values = dict.fromkeys(CTP_INSTRUMENT_FIELDS, "1")
    values.update(
        InstrumentID=instrument,
        ExchangeID="CZCE" if product.isupper() else "SHFE",
        InstrumentName=f"{instrument}合约",
        ExchangeInstID=instrument,
        ProductID=product,
        ProductClass=cls,
        VolumeMultiple=mult,
        PriceTick=tick,
        ExpireDate=expire,
        LongMarginRatio=margin,
        ShortMarginRatio=margin,
    )
    return [values[f] for f in CTP_INSTRUMENT_FIELDS]


CTP_ROWS = [
    ctp_row("rb1801", "rb", "1", "10", "1", "20180115", "0.15"),  # near delivery: raised
    ctp_row("rb1805", "rb", "1", "10", "1", "20180515", "0.09"),
    ctp_row("rb1810", "rb", "1", "10", "1", "20181015", "0.09"),
    ctp_row("SR805", "SR", "1", "10", "1", "20180515", "0.05"),
    ctp_row("SR801C5600", "SRC", "2", "10", "0.5", "20171124", "1.79769e+308"),  # option
    ctp_row("fu1712", "fu", "1", "50", "1", "20171215", "0.4"),
    ctp_row("fu1901", "fu", "1", "10", "1", "20190115", "1.79769e+308"),  # newer spec, no ratio
]


def test_ctp_csv_with_header(tmp_path: Path) -> None:
    path = tmp_path / "instruments.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(CTP_INSTRUMENT_FIELDS)
        writer.writerows(CTP_ROWS)
    records = {r["product"]: r for r in load_ctp_instrument_csv(path)}
    assert set(records) == {"rb", "SR", "fu"}
    assert records["rb"] == {
        "product": "rb",
        "exchange": "SHFE",
        "multiplier": 10.0,
        "tick_size": 1.0,
        "margin_rate": 0.09,
    }
    assert records["SR"]["exchange"] == "CZCE" and records["SR"]["margin_rate"] == 0.05
    assert records["fu"]["multiplier"] == 10.0 and records["fu"]["margin_rate"] == 0.4


def test_ctp_csv_raw_gbk_without_header(tmp_path: Path) -> None:
    path = tmp_path / "20171113-Instruments.csv"
    with path.open("w", encoding="gbk", newline="") as fh:
        csv.writer(fh).writerows(CTP_ROWS)
    assert path.read_bytes().decode("gbk") and b"\xba\xcf" in path.read_bytes()  # "合" in GBK
    records = {r["product"]: r for r in load_ctp_instrument_csv(path)}
    assert records["rb"]["margin_rate"] == 0.09 and records["SR"]["tick_size"] == 1.0


def test_ctp_csv_as_override_updates_known_products_and_adds_new_ones(tmp_path: Path) -> None:
    # Issue 11 changed this: a CTP table used to update known products only ("zz" was dropped);
    # now it adds the products it knows, completed from documented per-exchange defaults.
    path = tmp_path / "broker.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(
            [*CTP_ROWS, ctp_row("zz1805", "zz", "1", "10", "1", "20180515", "0.1")]
        )
    table = load_contract_table([path])
    assert table.spec("rb").margin_rate == 0.09 and table.spec("SR").margin_rate == 0.05
    assert table.spec("rb").limit_rate == 0.05  # not in a CTP table: kept
    assert table.spec("rb").fee_close_today == 0.0003  # nor are fees
    zz = table.spec("zz1805")
    assert (zz.exchange, zz.multiplier, zz.tick_size, zz.margin_rate) == ("SHFE", 10, 1, 0.1)
    assert zz.name == "zz"  # the fixture's name is "zz1805合约": not a name without its month
    assert zz.limit_rate == 0.05 and zz.sessions == DAY and zz.reference_price == 1000
    assert zz.fee_open == 0.0 and zz.as_of == ""


def test_ctp_csv_errors_name_file_and_line(tmp_path: Path) -> None:
    bad = [*CTP_ROWS[:2], ctp_row("rb1810", "rb", "1", "ten", "1", "20181015", "0.09")]
    path = tmp_path / "bad.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(bad)
    with pytest.raises(ValueError, match=r"bad\.csv: line 3: VolumeMultiple 'ten'"):
        load_ctp_instrument_csv(path)
    short = tmp_path / "short.csv"
    short.write_text("rb1801,SHFE,rb1801\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"short\.csv: line 1: 3 columns, expected 25"):
        load_ctp_instrument_csv(short)


def test_ctp_csv_real_table() -> None:
    path = SPECS / "ctp_instruments_20171113_MagicEthan.csv"
    if not path.is_file():
        pytest.skip(
            f"public CTP instrument table not available at {path} (set FENGKONG_SHARED_DATA)"
        )
    records = {r["product"]: r for r in load_ctp_instrument_csv(path)}
    assert len(records) >= 45
    assert records["rb"] == {
        "product": "rb",
        "exchange": "SHFE",
        "multiplier": 10.0,
        "tick_size": 1.0,
        "margin_rate": 0.09,
    }
    assert (
        records["IF"]["multiplier"],
        records["IF"]["tick_size"],
        records["IF"]["margin_rate"],
    ) == (300, 0.2, 0.15)
    assert records["au"]["tick_size"] == 0.05  # the 2017 spec; 0.02 today
    assert records["SR"]["exchange"] == "CZCE" and records["T"]["multiplier"] == 10000
    table = load_contract_table([path])
    assert table.spec("rb").margin_rate == 0.09 and table.spec("au").tick_size == 0.05


def test_default_agrees_with_public_tqsdk_table(default: ContractTable) -> None:
    path = SPECS / "tqsdk_futures_specs_2020-06-16.csv"
    if not path.is_file():
        pytest.skip(
            f"public TqSdk contract table not available at {path} (set FENGKONG_SHARED_DATA)"
        )
    public: dict[str, tuple[float, float, str]] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["class"] == "FUTURE" and row["expired"] == "False":
                public[row["product_id"]] = (
                    float(row["volume_multiple"]),
                    float(row["price_tick"]),
                    row["exchange_id"],
                )
    # Specs changed since 2020, documented in contracts.toml's header and records.
    public.update(CHANGED_SINCE_2020)
    compared = 0
    for spec in default:
        if spec.product in public:
            assert (spec.multiplier, spec.tick_size, spec.exchange) == public[spec.product], (
                spec.product
            )
            compared += 1
    assert compared >= 60
