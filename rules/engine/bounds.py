"""Account figures over a stretch of prices, for the backtest: bounds (the screen) and paths.

Every account figure is built from sums that are linear in prices (profit = units × price −
cost, margin = margin units × price + fixed margin, ...), so if each held contract's price stays
within [lo, hi] over a stretch of time, interval arithmetic gives each figure a range that
contains every value it takes. A rule whose state cannot change anywhere in that range need
not be evaluated step by step: the backtest evaluates exactly (with the live code) only the
accounts some rule could fire or re-arm for. The ranges are widened by a relative epsilon so
rounding never excludes a value the exact path computes.

Reads the AccountBook's per-position factors (rules.book), which the live marking uses too.
"""

from __future__ import annotations

import numpy as np

from rules.account_math import FIGURES, account_figures
from rules.book import AccountBook

EPS = 1e-9


def _span(coef: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = coef * lo, coef * hi
    return np.minimum(a, b), np.maximum(a, b)


def figure_bounds(
    book: AccountBook,
    p_lo: np.ndarray,
    p_hi: np.ndarray,
    unpriced: np.ndarray,
    rows: np.ndarray,
    metrics: set[str] | None = None,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per figure, (lo, hi) for account `rows` while each contract's price stays within
    [p_lo, p_hi] (per contract row). `unpriced` contracts have no price yet at some moment of
    the stretch: their positions' cost stands in then, as when marking."""
    book._refresh_factors()
    n = book.n_positions
    na = book.n_accounts
    mask = np.zeros(na, dtype=bool)
    mask[rows] = True
    pos = np.flatnonzero(mask[book.pos_account[:n]])
    f = book._factor
    units = f["units"][pos]
    cost_px = np.divide(f["cost_value"][pos], units, out=np.zeros_like(units), where=units != 0)
    c = book.pos_contract[pos]
    lo = np.where(unpriced[c], np.fmin(p_lo[c], cost_px), p_lo[c])
    hi = np.where(unpriced[c], np.fmax(p_hi[c], cost_px), p_hi[c])
    acc = book.pos_account[pos]

    def total(values: np.ndarray) -> np.ndarray:
        return np.bincount(acc, weights=values, minlength=na)[rows]

    def linear(coef: np.ndarray, const: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        a, b = _span(coef, lo, hi)
        shift = total(const) if const is not None else 0.0
        return total(a) + shift, total(b) + shift

    mu = f["margin_units"][pos]
    a = book.acc
    static = a["pre_balance"][rows] + a["deposit"][rows] - a["withdraw"][rows]
    base = static + a["close_profit"][rows] - a["commission"][rows]
    frozen = a["frozen_margin"][rows] + a["frozen_commission"][rows]
    want = set(FIGURES) if metrics is None else set(metrics)
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {"static_equity": (static, static)}
    profit = linear(units, -f["cost_value"][pos])
    equity = (base + profit[0], base + profit[1])
    out.update(position_profit=profit, equity=equity)
    if want & {"margin", "available", "risk_degree", "liquidation_distance"}:
        margin = linear(mu, f["fixed_margin"][pos])
        out["margin"] = margin
        out["available"] = (equity[0] - margin[1] - frozen, equity[1] - margin[0] - frozen)
        out["risk_degree"] = _ratio(margin, equity)
        if "liquidation_distance" in want:
            denom = linear(f["abs_units"][pos] - np.sign(units) * mu)
            out["liquidation_distance"] = _distance(equity, margin, denom)
    if want & {"exchange_margin", "exchange_risk_degree"}:
        ex_margin = linear(f["ex_margin_units"][pos], f["ex_fixed_margin"][pos])
        out["exchange_margin"] = ex_margin
        out["exchange_risk_degree"] = _ratio(ex_margin, equity)
    return {k: _widen(*v) for k, v in out.items() if k in want}


def _ratio(
    m: tuple[np.ndarray, np.ndarray], e: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Range of risk_degree(m, e): m / e for e > 0; inf for e <= 0 with margin, else 0."""
    m_lo, m_hi = m
    e_lo, e_hi = e
    with np.errstate(divide="ignore", invalid="ignore"):
        pos_lo = np.where(m_lo > 0, m_lo / e_hi, 0.0)
        lo = np.where(e_hi > 0, pos_lo, np.where(m_lo > 0, np.inf, 0.0))
        hi = np.where(e_lo > 0, m_hi / e_lo, np.where(m_hi > 0, np.inf, 0.0))
    return lo, hi


def _distance(
    e: tuple[np.ndarray, np.ndarray],
    m: tuple[np.ndarray, np.ndarray],
    d: tuple[np.ndarray, np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """Range of max((E − M) / D, 0) with D > 0 (inf where the account holds nothing)."""
    z_lo, z_hi = e[0] - m[1], e[1] - m[0]
    d_lo, d_hi = d
    held = d_hi > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        lo = np.maximum(
            0.0, np.where(z_lo >= 0, z_lo / d_hi, z_lo / np.where(d_lo > 0, d_lo, np.nan))
        )
        hi = np.maximum(
            0.0, np.where(z_hi >= 0, z_hi / np.where(d_lo > 0, d_lo, np.nan), z_hi / d_hi)
        )
    lo = np.where(held, np.nan_to_num(lo, nan=0.0), np.inf)
    hi = np.where(held, np.where(np.isnan(hi), np.inf, hi), np.inf)
    return lo, hi


def _widen(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lo = np.asarray(lo, dtype=np.float64)
    hi = np.asarray(hi, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return lo - EPS * np.abs(lo) - 1e-12, hi + EPS * np.abs(hi) + 1e-12


def figure_path(
    book: AccountBook, rows: np.ndarray, prices: np.ndarray, metrics: set[str]
) -> dict[str, np.ndarray]:
    """Exact figures of account `rows` (ascending) at each of S price vectors (prices[S, C],
    NaN: no price yet) — the book's own marking arithmetic, step for step: per-position
    values from the same factors, summed per account in position order (np.bincount, as the
    book sums), then rules.account_math.account_figures. Bit for bit what marking the book at
    each step gives (tested); vectorized over the steps of a backtest block."""
    book._refresh_factors()
    n, na = book.n_positions, book.n_accounts
    mask = np.zeros(na, dtype=bool)
    mask[rows] = True
    pos = np.flatnonzero(mask[book.pos_account[:n]])
    f = book._factor
    s, r = prices.shape[0], rows.shape[0]
    price = prices[:, book.pos_contract[pos]]
    nan = np.isnan(price)
    units = f["units"][pos]
    if nan.any():
        cost_px = np.divide(f["cost_value"][pos], units, out=np.zeros_like(units), where=units != 0)
        price = np.where(nan, cost_px[None, :], price)
    local = np.full(na, -1, dtype=np.int64)
    local[rows] = np.arange(r)
    key = (np.arange(s)[:, None] * r + local[book.pos_account[pos]][None, :]).ravel()

    def total(values: np.ndarray) -> np.ndarray:
        return np.bincount(key, weights=values.ravel(), minlength=s * r).reshape(s, r)

    margin_var = price * f["margin_units"][pos]
    a = book.acc
    figures = account_figures(
        a["pre_balance"][rows] + a["deposit"][rows] - a["withdraw"][rows],
        a["close_profit"][rows],
        a["commission"][rows],
        a["frozen_margin"][rows] + a["frozen_commission"][rows],
        total(units * price - f["cost_value"][pos]),
        total(margin_var + f["fixed_margin"][pos]),
        total(price * f["ex_margin_units"][pos] + f["ex_fixed_margin"][pos]),
        total(price * f["abs_units"][pos]),
        total(np.sign(units) * margin_var),
    )
    return {m: np.broadcast_to(getattr(figures, m), (s, r)) for m in metrics if m in FIGURES}
