"""Single-side margin (单边大保证金) and the liquidation distance it implies. Pure numpy.

On a two-way (locked, 锁仓) position the exchanges charge margin on the larger side only, as
CTP does for an instrument whose ``MaxMarginSideAlgorithm`` is ``THOST_FTDC_MMSA_YES``:
per investor and *product group* (CTP ``ProductGroupID``, in the contract table
``margin_group``; empty means the product itself) the long side's margin and the short side's
margin are summed separately, and the larger of the two is charged (CTP reports both,
``LongUseMargin`` / ``ShortUseMargin``, and ``UseMargin`` is their maximum).

Scope, by exchange (``SINGLE_SIDE``, the default of ``AccountPolicy.single_side="exchange"``):

* SHFE, INE: the same product (all months of ``cu`` net against each other). Each side's
  margin is taken at the account's margin price: with CTP's "open price" type today's lots at
  their open price and yesterday's at the previous settlement, so a new lock opened today can
  be the larger side at its fill price before the settlement reprices it.
* DCE, GFEX: the same product (DCE's 期货对锁 combination, which the exchange applies to a
  client's two-way positions; GFEX follows DCE's rule book).
* CZCE: the same product (单向大边).
* CFFEX: across the products of one group — the equity index futures IF/IH/IC/IM together,
  the treasury futures TS/TF/T/TL together — as the table's ``margin_group`` names them.

Not modelled: the end of the treatment as a contract nears delivery (each exchange stops
netting a contract somewhere between the month before delivery and its last trading days);
the contract table has no expiry calendar. An account group whose broker charges both sides
sets ``single_side = "off"``.

Margin is charged on |price| (a contract that trades at −37.63 is still worth 37.63 a unit of
risk; margin is never negative). The book keeps per position ``m = |p| × margin units +
fixed`` and ``s = sign × p × margin units`` — how fast its margin falls when the price moves
against it by a fraction x of |p| — so a side's margin along such a move is ``m − x·s``.

**Liquidation distance under single-side margin.** Moving every price against its position
by x: equity(x) = E − x·N, margin(x) = Σ_group max(L_g − x·sL_g, S_g − x·sS_g). The max makes
margin(x) convex and piecewise linear, so f(x) = equity(x) − margin(x) is concave. Newton's
method from x = 0 on a concave piecewise-linear f overshoots once (the tangent lies above f)
and then decreases monotonically onto the root, exactly, after at most one step per side
change. `newton_distance` does that, vectorized over accounts; with no hedged group it is the
linear formula (one step).
"""

from __future__ import annotations

import numpy as np

# Exchanges that charge the larger side of a two-way position (see the module docstring).
SINGLE_SIDE: dict[str, bool] = {
    "SHFE": True, "INE": True, "DCE": True, "GFEX": True, "CZCE": True, "CFFEX": True,
}  # fmt: skip
SINGLE_SIDE_MODES = ("exchange", "off")
LONG, SHORT = 0, 1
MAX_NEWTON_STEPS = 64


def group_name(spec) -> str:
    """The netting scope of a product: exchange and margin group (or the product itself)."""
    return f"{spec.exchange}:{spec.margin_group or spec.product}"


def side_sums(values: np.ndarray, slot: np.ndarray, n_keys: int) -> np.ndarray:
    """Per (key, side) sums of per-position `values` ([S,] P) -> ([S,] K, 2); slot = 2·key + side."""
    if values.ndim == 1:
        return np.bincount(slot, weights=values, minlength=2 * n_keys).reshape(n_keys, 2)
    s = values.shape[0]
    flat = (np.arange(s)[:, None] * (2 * n_keys) + slot[None, :]).ravel()
    out = np.bincount(flat, weights=values.ravel(), minlength=s * 2 * n_keys)
    return out.reshape(s, n_keys, 2)


def pick_sides(
    m: np.ndarray, s: np.ndarray, single: np.ndarray, x: np.ndarray | float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Whether each key's long and short side is charged ([S,] K bools each) when prices have
    moved against the positions by x.

    A single-side key charges its larger side at x; on a tie, the side whose margin grows
    faster as the move continues (smaller s), so the choice holds just past x. Other keys
    charge both sides.
    """
    at_long = m[..., LONG] - x * s[..., LONG]
    at_short = m[..., SHORT] - x * s[..., SHORT]
    long_wins = (at_long > at_short) | ((at_long == at_short) & (s[..., LONG] < s[..., SHORT]))
    both = ~single
    return both | long_wins, both | ~long_wins


def charged(m: np.ndarray, single: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(charged margin per key, long charged?, short charged?) at the current prices."""
    long_margin, short_margin = m[..., LONG], m[..., SHORT]
    long_wins = long_margin > short_margin
    both = ~single
    w_long, w_short = both | long_wins, both | ~long_wins
    return long_margin * w_long + short_margin * w_short, w_long, w_short


def newton_distance(
    equity: np.ndarray,
    notional: np.ndarray,
    m: np.ndarray,
    s: np.ndarray,
    single: np.ndarray,
    key_account: np.ndarray,
    n_accounts: int,
    base_margin: np.ndarray | float = 0.0,
    base_sensitivity: np.ndarray | float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """(margin, sensitivity) per account of the sides charged at the liquidation crossing.

    Feeding them to the linear formula (E − margin) / (N − sensitivity) gives the exact
    crossing of the piecewise-linear margin (module docstring). `m`, `s`: (K, 2) per key and
    side of the netting keys; `key_account`: the account row of each key; `equity`,
    `notional`, `base_*` (the margin and sensitivity outside those keys): per account row.
    """
    ml, ms = np.ascontiguousarray(m[:, LONG]), np.ascontiguousarray(m[:, SHORT])
    sl, ss = np.ascontiguousarray(s[:, LONG]), np.ascontiguousarray(s[:, SHORT])
    wl, ws = pick_sides(m, s, single, 0.0)
    for _ in range(MAX_NEWTON_STEPS):
        a = base_margin + np.bincount(key_account, weights=ml * wl + ms * ws, minlength=n_accounts)
        b = base_sensitivity + np.bincount(
            key_account, weights=sl * wl + ss * ws, minlength=n_accounts
        )
        denom = notional - b
        with np.errstate(divide="ignore", invalid="ignore"):
            x = np.where(denom > 0, np.maximum((equity - a) / denom, 0.0), 0.0)[key_account]
        at_long, at_short = ml - x * sl, ms - x * ss
        long_wins = (at_long > at_short) | ((at_long == at_short) & (sl < ss))
        wl_new, ws_new = ~single | long_wins, ~single | ~long_wins
        if np.array_equal(wl_new, wl) and np.array_equal(ws_new, ws):
            return a, b
        wl, ws = wl_new, ws_new
    return a, b  # pragma: no cover - bounded by the number of side changes


def span_abs(coef: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Range of coef × |p| for p in [lo, hi] (coef ≥ 0): |p| spans [0, max] across zero."""
    a, b = np.abs(lo), np.abs(hi)
    straddle = (lo < 0) & (hi > 0)
    return coef * np.where(straddle, 0.0, np.minimum(a, b)), coef * np.maximum(a, b)
