"""A contract table with fees and margin groups for the account-book tests.

The shipped table's fee figures are filled elsewhere; these tests fix their own (public-style
figures, round numbers) so the hand-computed examples stay valid whatever the table says.
"""

from __future__ import annotations

from infra.specs import load_contract_table

FEES = [
    # SHFE rb: by turnover, close-today dearer (so a plain close of today's lots is an error).
    {"product": "rb", "fee_by": "turnover", "fee_open": 0.0001, "fee_close": 0.0001,
     "fee_close_today": 0.0003},
    {"product": "cu", "fee_by": "turnover", "fee_open": 0.00005, "fee_close": 0.00005,
     "fee_close_today": 0.0001},
    {"product": "sc", "fee_by": "volume", "fee_open": 20.0, "fee_close": 20.0, "fee_close_today": 0.0},
    # DCE m: per lot, close-today dearer -> first-in first-out.
    {"product": "m", "fee_by": "volume", "fee_open": 1.5, "fee_close": 1.5, "fee_close_today": 3.0},
    # CZCE SR: per lot, close-today waived -> today's lots first.
    {"product": "SR", "fee_by": "volume", "fee_open": 3.0, "fee_close": 3.0, "fee_close_today": 0.0},
    # CFFEX index futures net together; close-today ten times dearer.
    {"product": "IF", "fee_by": "turnover", "fee_open": 0.000023, "fee_close": 0.000023,
     "fee_close_today": 0.00023, "margin_group": "equity_index"},
    {"product": "IC", "fee_by": "turnover", "fee_open": 0.000023, "fee_close": 0.000023,
     "fee_close_today": 0.00023, "margin_group": "equity_index"},
    {"product": "si", "fee_by": "volume", "fee_open": 5.0, "fee_close": 5.0, "fee_close_today": 5.0},
]  # fmt: skip


def fee_table():
    return load_contract_table().with_overrides(FEES)
