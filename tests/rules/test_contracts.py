"""Contract specs: validation, lookup, overrides and limit prices (pure, no files)."""

from __future__ import annotations

import dataclasses
import pickle
from typing import Any

import numpy as np
import pytest

from rules.contracts import (
    ContractRecordError,
    ContractSpec,
    ContractTable,
    UnknownContract,
    limit_prices,
    product_of,
)

DAY = [["09:00", "10:15"], ["10:30", "11:30"], ["13:30", "15:00"]]


def record(**changes: Any) -> dict[str, Any]:
    base = {
        "product": "rb",
        "exchange": "SHFE",
        "name": "螺纹钢",
        "multiplier": 10,
        "tick_size": 1,
        "margin_rate": 0.07,
        "limit_rate": 0.05,
        "sessions": [["21:00", "23:00"], *DAY],
        "unit": "吨",
        "reference_price": 3100,
    }
    base.update(changes)
    return base


@pytest.fixture
def table() -> ContractTable:
    return ContractTable.from_records(
        [
            record(),
            record(product="SR", exchange="CZCE", name="白糖", reference_price=5500),
            record(
                product="IF",
                exchange="CFFEX",
                name="沪深300股指期货",
                multiplier=300,
                tick_size=0.2,
                margin_rate=0.12,
                limit_rate=0.10,
                sessions=[["09:30", "11:30"], ["13:00", "15:00"]],
                unit="点",
                reference_price=4500,
            ),
            record(product="i", exchange="DCE", name="铁矿石", multiplier=100, tick_size=0.5),
        ]
    )


@pytest.mark.parametrize(
    ("instrument", "product"),
    [
        ("rb2601", "rb"),
        ("SR601", "SR"),
        ("IF2512", "IF"),
        ("i2601", "i"),
        ("SR801C5600", "SR"),
        ("m2605-C-2800", "m"),
        ("rb888", "rb"),
    ],
)
def test_product_of(instrument: str, product: str) -> None:
    assert product_of(instrument) == product


@pytest.mark.parametrize(
    ("instrument", "why"),
    [
        ("2601", "does not start with the product letters"),
        ("", "does not start with the product letters"),
        ("rb", "no month part"),
        ("rb26", "3- or 4-digit month"),
        ("SHFE.rb2601", "3- or 4-digit month"),
    ],
)
def test_product_of_rejects(instrument: str, why: str) -> None:
    with pytest.raises(ValueError, match=why) as info:
        product_of(instrument)
    assert repr(instrument) in str(info.value)


def test_product_of_needs_a_string() -> None:
    with pytest.raises(TypeError):
        product_of(2601)  # type: ignore[arg-type]


def test_from_records_builds_typed_specs(table: ContractTable) -> None:
    rb = table.spec("rb")
    assert isinstance(rb.multiplier, float) and rb.multiplier == 10.0
    assert rb.sessions == (
        ("21:00", "23:00"),
        ("09:00", "10:15"),
        ("10:30", "11:30"),
        ("13:30", "15:00"),
    )
    assert rb.commodity == "rb"  # defaults to the product
    assert rb.has_night_session and not table.spec("IF").has_night_session
    assert table.products() == ("rb", "SR", "IF", "i")
    assert len(table) == 4 and [s.product for s in table] == list(table.products())


def test_spec_is_frozen_and_slotted(table: ContractTable) -> None:
    rb = table.spec("rb")
    with pytest.raises(dataclasses.FrozenInstanceError):
        rb.multiplier = 5  # type: ignore[misc]
    assert not hasattr(rb, "__dict__")


def test_commodity_can_group_products() -> None:
    t = ContractTable.from_records([record(commodity="steel")])
    assert t.spec("rb2601").commodity == "steel"


def test_lookup_by_instrument_and_product(table: ContractTable) -> None:
    assert table.spec("rb2601") is table.spec("rb")
    assert table.spec("SR601").exchange == "CZCE"
    assert table.spec("i2601").multiplier == 100
    assert table.spec("IF2512").tick_size == 0.2
    assert table.spec("RB2601") is table.spec("rb")  # upper-casing vendors
    assert "rb2601" in table and "SR" in table
    assert "cu2601" not in table and "nonsense" not in table and 42 not in table


def test_unknown_contract_names_the_instrument(table: ContractTable) -> None:
    with pytest.raises(UnknownContract) as info:
        table.spec("cu2601")
    assert isinstance(info.value, KeyError)
    message = str(info.value)
    assert "'cu2601'" in message and "'cu'" in message and not message.startswith('"')
    with pytest.raises(UnknownContract, match="SHFE.rb2601"):
        table.spec("SHFE.rb2601")


def test_case_fallback_only_when_unambiguous() -> None:
    t = ContractTable.from_records([record(product="ab"), record(product="AB", exchange="CZCE")])
    assert t.spec("ab2601").exchange == "SHFE" and t.spec("AB601").exchange == "CZCE"
    assert "Ab601" not in t


@pytest.mark.parametrize(
    ("changes", "key", "why"),
    [
        ({"multiplier": 0}, "multiplier", "positive"),
        ({"tick_size": -1}, "tick_size", "positive"),
        ({"tick_size": "1"}, "tick_size", "number"),
        ({"multiplier": True}, "multiplier", "number"),
        ({"margin_rate": 7}, "margin_rate", "fraction"),
        ({"limit_rate": 0}, "limit_rate", "positive"),
        ({"reference_price": float("nan")}, "reference_price", "positive"),
        ({"exchange": "LME"}, "exchange", "unknown exchange"),
        ({"name": ""}, "name", "non-empty"),
        ({"sessions": []}, "sessions", "non-empty list"),
        ({"sessions": "21:00-23:00"}, "sessions", "non-empty list"),
        ({"sessions": [["9:00", "10:15"]]}, "sessions", "HH:MM"),
        ({"sessions": [["09:00", "24:00"]]}, "sessions", "HH:MM"),
        ({"sessions": [["09:00"]]}, "sessions", "pair"),
        ({"sessions": [["09:00", "09:00"]]}, "sessions", "starts and ends"),
        ({"sessions": [*DAY, ["21:00", "01:00"]]}, "sessions", "only the first"),
        ({"tick": 1}, "tick", "unknown key"),
        ({"fee_by": "lots"}, "fee_by", "one of volume, turnover"),
        ({"fee_open": -1}, "fee_open", "zero or positive"),
        ({"fee_close": "3"}, "fee_close", "number"),
        ({"fee_by": "turnover", "fee_close_today": 3}, "fee_close_today", "fraction of turnover"),
        ({"margin_group": 1}, "margin_group", "string"),
        ({"as_of": "2025-13-01"}, "as_of", "YYYY-MM-DD"),
        ({"as_of": "20250101"}, "as_of", "YYYY-MM-DD"),
    ],
)
def test_invalid_records_name_product_and_key(changes: dict[str, Any], key: str, why: str) -> None:
    with pytest.raises(ContractRecordError) as info:
        ContractTable.from_records([record(product="SR", exchange="CZCE"), record(**changes)])
    error = info.value
    assert isinstance(error, ValueError)
    assert (error.product, error.key, error.index) == ("rb", key, 1)
    assert (
        why in str(error)
        and "'rb'" in str(error)
        and repr(key) in str(error)
        and "#2" in str(error)
    )


def test_missing_key_and_bad_product() -> None:
    incomplete = record()
    del incomplete["tick_size"]
    with pytest.raises(ContractRecordError, match="'tick_size': missing"):
        ContractTable.from_records([incomplete])
    with pytest.raises(ContractRecordError, match="'product'"):
        ContractTable.from_records([record(product="rb2601")])


def test_duplicate_product_is_rejected() -> None:
    with pytest.raises(ContractRecordError, match="duplicate"):
        ContractTable.from_records([record(), record()])


def test_partial_override_changes_only_its_keys(table: ContractTable) -> None:
    updated = table.with_overrides([{"product": "rb", "margin_rate": 0.10}])
    assert updated.spec("rb").margin_rate == 0.10
    assert (
        updated.spec("rb").multiplier == 10
        and updated.spec("rb").sessions == table.spec("rb").sessions
    )
    assert table.spec("rb").margin_rate == 0.07  # the original is untouched
    assert updated.products() == table.products()


def test_override_adds_a_whole_new_product(table: ContractTable) -> None:
    cu = record(product="cu", name="铜", multiplier=5, tick_size=10, reference_price=80000)
    updated = table.with_overrides([cu])
    assert updated.spec("cu2601").multiplier == 5 and "cu" not in table


def test_partial_override_of_unknown_product_says_what_is_missing(table: ContractTable) -> None:
    with pytest.raises(
        ContractRecordError, match="missing.*only override a product already in the table"
    ):
        table.with_overrides([{"product": "cu", "margin_rate": 0.1}])


def test_override_values_are_validated(table: ContractTable) -> None:
    with pytest.raises(ContractRecordError) as info:
        table.with_overrides(
            [{"product": "IF", "margin_rate": 0.15}, {"product": "rb", "tick_size": 0}]
        )
    assert (info.value.product, info.value.key, info.value.index) == ("rb", "tick_size", 1)


def test_limit_prices_round_inwards_to_the_tick() -> None:
    # IF2101 on 2021-01-04: pre-settlement 5216.2, the exchange's limits 5737.8 / 4694.6.
    upper, lower = limit_prices(np.array([5216.2]), np.array([0.10]), np.array([0.2]))
    assert upper.tolist() == [5737.8] and lower.tolist() == [4694.6]
    # 3501 x 1.05 = 3676.05 -> down to 3676; 3501 x 0.95 = 3325.95 -> up to 3326.
    upper, lower = limit_prices(3501.0, 0.05, 1.0)
    assert (float(upper), float(lower)) == (3676.0, 3326.0)


def test_limit_prices_keep_exact_multiples() -> None:
    upper, lower = limit_prices(np.array([3500.0, 100.0]), 0.05, np.array([1.0, 0.005]))
    assert upper.tolist() == [3675.0, 105.0] and lower.tolist() == [3325.0, 95.0]


def test_limit_prices_vectorized_over_contracts() -> None:
    pre = np.array([3100.0, 80000.0, 780.0, 612.34])
    rate = np.array([0.05, 0.06, 0.09, 0.15])
    tick = np.array([1.0, 10.0, 0.5, 0.02])
    upper, lower = limit_prices(pre, rate, tick)
    assert upper.shape == lower.shape == (4,)
    np.testing.assert_allclose(upper, [3255.0, 84800.0, 850.0, 704.18])
    np.testing.assert_allclose(lower, [2945.0, 75200.0, 710.0, 520.5])
    assert np.all(upper <= pre * (1 + rate) + 1e-9) and np.all(lower >= pre * (1 - rate) - 1e-9)


def test_limit_prices_reject_bad_ticks() -> None:
    with pytest.raises(ValueError, match="tick_size"):
        limit_prices(np.array([100.0]), 0.05, np.array([0.0]))
    with pytest.raises(ValueError, match="limit_rate"):
        limit_prices(np.array([100.0]), -0.05, 1.0)


def test_contract_spec_fields_are_the_record_keys() -> None:
    optional = ["commodity", "fee_by", "fee_open", "fee_close", "fee_close_today",
                "margin_group", "as_of"]  # fmt: skip
    assert [f.name for f in dataclasses.fields(ContractSpec)] == [*record(), *optional]


def test_table_pickles_for_actors(table: ContractTable) -> None:
    copy = pickle.loads(pickle.dumps(table))
    assert copy.products() == table.products() and copy.spec("RB2601") == table.spec("rb")


def test_fees_group_and_date_are_optional_and_typed() -> None:
    plain = ContractTable.from_records([record()]).spec("rb")
    assert (plain.fee_by, plain.fee_open, plain.fee_close, plain.fee_close_today) == (
        "volume",
        0.0,
        0.0,
        0.0,
    )
    assert (plain.margin_group, plain.as_of) == ("", "")
    index = ContractTable.from_records(
        [
            record(
                product="IF",
                exchange="CFFEX",
                fee_by="turnover",
                fee_open=0.000023,
                fee_close=0.000023,
                fee_close_today=0.00023,
                margin_group="CFFEX.index",
                as_of="2023-03-20",
            )
        ]
    ).spec("IF2601")
    assert index.fee_by == "turnover" and index.fee_close_today == 10 * index.fee_open
    assert (index.margin_group, index.as_of) == ("CFFEX.index", "2023-03-20")
    cheaper = ContractTable([index]).with_overrides([{"product": "IF", "fee_close_today": 0.0001}])
    assert cheaper.spec("IF").fee_close_today == 0.0001 and cheaper.spec("IF").fee_open == 0.000023
