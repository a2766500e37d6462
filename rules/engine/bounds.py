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
from rules.margin import charged, newton_distance, side_sums, span_abs

EPS = 1e-9


def _span(coef: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = coef * lo, coef * hi
    return np.minimum(a, b), np.maximum(a, b)


def _local_keys(
    book: AccountBook, pos: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Single-side keys of positions `pos`, renumbered 0..K-1 in ascending global order (so
    sums run in the book's order): (slot per position, single per key, account per key, K)."""
    keys, local = np.unique(book.pos_key[pos], return_inverse=True)
    side = (book.pos["sign"][pos] < 0).astype(np.int64)
    return 2 * local + side, book.key_single[keys], book.key_account[keys], keys.size


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
    the stretch: their positions' cost stands in then, as when marking. Margin is on |price|
    and netted per single-side group (rules.margin): each side's range, then the larger side's
    (max of the bounds) where the group nets. An account with a hedged netting group gets
    [0, inf] for its liquidation distance (the crossing moves with the larger side)."""
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
    slot, single, key_account, n_keys = _local_keys(book, pos)

    def total(values: np.ndarray) -> np.ndarray:
        return np.bincount(acc, weights=values, minlength=na)[rows]

    def linear(coef: np.ndarray, const: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        a, b = _span(coef, lo, hi)
        shift = total(const) if const is not None else 0.0
        return total(a) + shift, total(b) + shift

    def netted(
        mu: np.ndarray, fixed: np.ndarray
    ) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
        m_lo, m_hi = span_abs(mu, lo, hi)
        sides_lo = side_sums(m_lo + fixed, slot, n_keys)
        sides_hi = side_sums(m_hi + fixed, slot, n_keys)
        k_lo = np.where(single, sides_lo.max(axis=1), sides_lo.sum(axis=1))
        k_hi = np.where(single, sides_hi.max(axis=1), sides_hi.sum(axis=1))
        lots = side_sums((book.pos["volume"][pos] > 0).astype(np.float64), slot, n_keys)
        hedged = single & (lots[:, 0] > 0) & (lots[:, 1] > 0)
        per = [np.bincount(key_account, weights=k, minlength=na)[rows] for k in (k_lo, k_hi)]
        return (per[0], per[1]), np.bincount(key_account, weights=hedged, minlength=na)[rows] > 0

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
        margin, hedged = netted(mu, f["fixed_margin"][pos])
        out["margin"] = margin
        out["available"] = (equity[0] - margin[1] - frozen, equity[1] - margin[0] - frozen)
        out["risk_degree"] = _ratio(margin, equity)
        if "liquidation_distance" in want:
            # N − S per position: |p|·abs_units − sign·p·mu, convex in p with its minimum at 0.
            g_lo, g_hi = _gap(f["abs_units"][pos], np.sign(units) * mu, lo, hi)
            d = _distance(equity, margin, (total(g_lo), total(g_hi)))
            out["liquidation_distance"] = (
                np.where(hedged, 0.0, d[0]),
                np.where(hedged, np.inf, d[1]),
            )
    if want & {"exchange_margin", "exchange_risk_degree"}:
        ex_margin, _ = netted(f["ex_margin_units"][pos], f["ex_fixed_margin"][pos])
        out["exchange_margin"] = ex_margin
        out["exchange_risk_degree"] = _ratio(ex_margin, equity)
    if want & {"locked_contracts", "locked_margin"}:
        lower = book.contracts.lower_limit[c]
        upper = book.contracts.upper_limit[c]
        with np.errstate(invalid="ignore"):
            maybe = (units != 0) & (((units > 0) & (lo <= lower)) | ((units < 0) & (hi >= upper)))
            sure = (units != 0) & (((units > 0) & (hi <= lower)) | ((units < 0) & (lo >= upper)))
        out["locked_contracts"] = (total(sure), total(maybe))
        m_hi = span_abs(mu, lo, hi)[1] + f["fixed_margin"][pos]
        out["locked_margin"] = (np.zeros(rows.shape), total(maybe * m_hi))
    return {k: _widen(*v) for k, v in out.items() if k in want}


def _gap(
    au: np.ndarray, s: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Range of |p|·au − s·p over p in [lo, hi] (au ≥ |s|: convex, minimum at p = 0)."""

    def g(p: np.ndarray) -> np.ndarray:
        return np.abs(p) * au - s * p

    return g(np.clip(0.0, lo, hi)), np.maximum(g(lo), g(hi))


def _ratio(
    m: tuple[np.ndarray, np.ndarray], e: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Range of risk_degree(m, e) (m ≥ 0): m / e for e > 0; inf for e ≤ 0 (past the line)."""
    m_lo, m_hi = m
    e_lo, e_hi = e
    with np.errstate(divide="ignore", invalid="ignore"):
        lo = np.where(e_hi > 0, np.where(m_lo > 0, m_lo / e_hi, 0.0), np.inf)
        hi = np.where(e_lo > 0, m_hi / e_lo, np.inf)
    return lo, hi


def _distance(
    e: tuple[np.ndarray, np.ndarray],
    m: tuple[np.ndarray, np.ndarray],
    d: tuple[np.ndarray, np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """Range of max((E − M) / D, 0) with D > 0 (inf where the account holds nothing); 0
    wherever equity may be ≤ 0 (past the line)."""
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
    return np.where(e[0] <= 0, 0.0, lo), np.where(e[1] <= 0, 0.0, hi)


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
    static = a["pre_balance"][rows] + a["deposit"][rows] - a["withdraw"][rows]
    profit = total(units * price - f["cost_value"][pos])
    notional = total(np.abs(price) * f["abs_units"][pos])
    # The book's netting, step for step (rules.book.marking.sum_into_figures).
    margin_pos = np.abs(margin_var) + f["fixed_margin"][pos]
    ex_pos = np.abs(price * f["ex_margin_units"][pos]) + f["ex_fixed_margin"][pos]
    sens_pos = np.sign(units) * margin_var
    margin, ex_margin, sensitivity = total(margin_pos), total(ex_pos), total(sens_pos)
    d_margin, d_sens = margin, sensitivity
    charged_pos = np.ones(margin_pos.shape)
    keys = book.pos_key[pos]
    side = (book.pos["sign"][pos] < 0).astype(np.int64)
    held = side_sums((book.pos["volume"][pos] > 0).astype(np.float64), 2 * keys + side, book.n_keys)
    hedged = book.key_single[: book.n_keys] & (held[:, 0] > 0) & (held[:, 1] > 0)
    if hedged.any():
        in_h = hedged[keys]
        hk, local_k = np.unique(keys[in_h], return_inverse=True)
        slot, nh = 2 * local_k + side[in_h], hk.size
        hk_acc = local[book.key_account[hk]]
        hkey = (np.arange(s)[:, None] * r + hk_acc[None, :]).ravel()

        def per_key(values: np.ndarray) -> np.ndarray:
            return np.bincount(hkey, weights=values.ravel(), minlength=s * r).reshape(s, r)

        m = side_sums(margin_pos[:, in_h], slot, nh)
        e = side_sums(ex_pos[:, in_h], slot, nh)
        sv = side_sums(sens_pos[:, in_h], slot, nh)
        every = np.ones(nh, dtype=bool)
        _, wl, ws = charged(m, every)
        _, ewl, ews = charged(e, every)
        margin = margin - per_key(m[..., 0] * ~wl + m[..., 1] * ~ws)
        ex_margin = ex_margin - per_key(e[..., 0] * ~ewl + e[..., 1] * ~ews)
        sensitivity = sensitivity - per_key(sv[..., 0] * ~wl + sv[..., 1] * ~ws)
        short = side[in_h] == 1
        charged_pos[:, in_h] = np.where(short[None, :], ws[:, local_k], wl[:, local_k])
        equity = static + a["close_profit"][rows] + profit - a["commission"][rows]
        base_m = total(margin_pos) - per_key(m[..., 0] + m[..., 1])
        base_s = total(sens_pos) - per_key(sv[..., 0] + sv[..., 1])
        pairs = [newton_distance(equity[i], notional[i], m[i], sv[i], every, hk_acc, r,
                                 base_m[i], base_s[i]) for i in range(s)]  # fmt: skip
        d_margin = np.stack([p[0] for p in pairs])
        d_sens = np.stack([p[1] for p in pairs])
    contract = book.pos_contract[pos]
    last = prices[:, contract]
    lower, upper = book.contracts.lower_limit[contract], book.contracts.upper_limit[contract]
    with np.errstate(invalid="ignore"):
        locked = (units != 0) & (((units > 0) & (last <= lower)) | ((units < 0) & (last >= upper)))
    figures = account_figures(
        static,
        a["close_profit"][rows],
        a["commission"][rows],
        a["frozen_margin"][rows] + a["frozen_commission"][rows],
        profit, margin, ex_margin, notional, sensitivity,
        distance_margin=d_margin, distance_sensitivity=d_sens,
        locked_contracts=total(locked.astype(np.float64)),
        locked_margin=total(locked * margin_pos * charged_pos),
    )  # fmt: skip
    return {m: np.broadcast_to(getattr(figures, m), (s, r)) for m in metrics if m in FIGURES}
