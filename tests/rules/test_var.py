"""VaR against a case computed by hand."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pytest

from rules.var import (
    aligned_total,
    historical_var,
    parametric_var,
    parametric_var_cov,
    pnl_scenarios,
    returns,
    var_figures,
)

DAYS = [date(2026, 1, d) for d in (5, 6, 7, 8, 9)]
SPOT_R = dict(zip(DAYS, [0.02, -0.03, -0.01, 0.01, -0.05], strict=True))
FUT_R = dict(zip(DAYS, [0.01, -0.02, 0.01, 0.00, -0.04], strict=True))
# Inventory worth 1,000,000 at spot, hedged with 600,000 of short futures.
W = (1_000_000.0, -600_000.0)
# By hand: 20,000-6,000 | -30,000+12,000 | -10,000-6,000 | 10,000-0 | -50,000+24,000
PNL = [14_000.0, -18_000.0, -16_000.0, 10_000.0, -26_000.0]


def test_scenarios_revalue_todays_exposure_with_each_days_returns():
    pnl = pnl_scenarios(W, [SPOT_R, FUT_R], window=250)
    assert list(pnl) == DAYS
    assert list(pnl.values()) == pytest.approx(PNL)
    assert list(pnl_scenarios(W, [SPOT_R, FUT_R], window=2).values()) == pytest.approx(PNL[-2:])


def test_historical_var_is_the_kth_worst_loss():
    # n = 5: at 95%, k = ceil(5 × 0.05) = 1, the worst loss; at 60%, k = ceil(2) = 2.
    assert historical_var(PNL, 0.95) == 26_000.0
    assert historical_var(PNL, 0.99) == 26_000.0
    assert historical_var(PNL, 0.60) == 18_000.0
    # n = 100 losses 1..100: 95% is the 5th worst (96), 99% the worst (100).
    losses = [-float(x) for x in range(1, 101)]
    assert historical_var(losses, 0.95) == 96.0
    assert historical_var(losses, 0.99) == 100.0
    assert historical_var([5.0, 7.0], 0.95) == 0.0  # no loss in the window
    assert math.isnan(historical_var([], 0.95))


def test_parametric_var_by_hand():
    # Mean -7,200; deviations 21,200 -10,800 -8,800 17,200 -18,800; squares sum 1,292,800,000.
    sigma = math.sqrt(1_292_800_000 / 4)  # 17,977.76
    assert parametric_var(PNL, 0.95) == pytest.approx(1.6448536269514722 * sigma)  # 29,570.8
    assert parametric_var(PNL, 0.99) == pytest.approx(2.3263478740408408 * sigma)  # 41,822.5
    # The same through the covariance of the two factors' returns: sqrt(wᵀ Σ w).
    r = np.array([[SPOT_R[d], FUT_R[d]] for d in DAYS])
    assert parametric_var_cov(np.array(W), np.cov(r.T), 0.95) == pytest.approx(
        parametric_var(PNL, 0.95)
    )


def test_returns_from_prices_skip_gaps_and_bad_prices():
    prices = {date(2026, 1, 5): 100.0, date(2026, 1, 6): 102.0, date(2026, 1, 8): 96.9,
              date(2026, 1, 9): float("nan")}  # fmt: skip
    assert returns(prices) == pytest.approx({date(2026, 1, 6): 0.02, date(2026, 1, 8): -0.05})


def test_total_sums_books_on_common_days_so_hedges_net_out():
    long_book = dict(zip(DAYS, PNL, strict=True))
    short_book = {d: -v for d, v in list(long_book.items())[1:]}  # lacks the first day
    total = aligned_total([long_book, short_book])
    assert list(total) == DAYS[1:] and all(v == 0 for v in total.values())
    figures = var_figures(total, min_obs=3)
    assert figures["var_95"] == 0.0 and figures["var_obs"] == 4
    short = var_figures(long_book, min_obs=20)
    assert math.isnan(short["var_99"]) and math.isnan(short["param_var_95"])
