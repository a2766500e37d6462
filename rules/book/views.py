"""Read-only views of the book: drill-downs, per-contract distances, holdings, exposure."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from rules.account_math import FIGURES, MARGIN_PRICE_TYPES
from rules.book.columns import ACCOUNT_COLUMNS, deep_size
from rules.book.marking import refresh_factors

if TYPE_CHECKING:
    from rules.book.book import AccountBook


def _at(arr: np.ndarray, p: int, default: float = 0.0) -> float:
    return float(arr[p]) if arr.shape[0] > p else default


def positions_of(book: AccountBook, row: int) -> list[dict[str, Any]]:
    """Held positions of an account row with their marks (margin: the position's own, both
    sides; `margin_charged`: whether single-side margin charges it)."""
    refresh_factors(book)
    c, f, v = book.contracts, book._factor, book._value
    excess = _side_excess(book, row)
    group_names = {i: name for name, i in c.group_ids.items()}
    out = []
    for p in book.account_positions[row]:
        if book.pos["volume"][p] <= 0:
            continue
        contract = int(book.pos_contract[p])
        spec = c.specs[contract]
        units = _at(f["units"], p)
        out.append({
            "instrument": c.names[contract],
            "direction": "long" if book.pos["sign"][p] > 0 else "short",
            "volume": float(book.pos["volume"][p]),
            "today_volume": float(book.pos["today_volume"][p]),
            "open_price": float(book.pos["open_price"][p]),
            "today_open_price": float(book.pos["today_open_price"][p]),
            "cost_price": float(f["cost_value"][p] / units) if units else float("nan"),
            "last": float(c.last[contract]),
            "pre_settlement": float(c.pre_settlement[contract]),
            "position_profit": _at(v["profit"], p),
            "margin": _at(v["margin"], p),
            "margin_charged": bool(_at(v["charged"], p, 1.0)),
            "margin_group": group_names[int(c.group[contract])],
            "margin_side_excess": excess[(int(book.pos_key[p]), int(book.pos["sign"][p] < 0))],
            "multiplier": float(book.pos["multiplier"][p]),
            "margin_rate": float(book.pos["margin_rate"][p] + book.acc["margin_markup"][row]),
            "exchange_margin_rate": float(book.pos["margin_rate"][p]),
            "upper_limit": float(c.upper_limit[contract]),
            "lower_limit": float(c.lower_limit[contract]),
            "limit_locked": bool(_at(v["locked"], p)),
            "commodity": c.commodity[contract],
            "exchange": spec.exchange,
            "tick_size": float(spec.tick_size),
        })  # fmt: skip
    return out


def _side_excess(book: AccountBook, row: int) -> dict[tuple[int, int], float]:
    """Per (key, side) of an account: the margin closing that side can free — all of it where
    both sides are charged, the excess over the other side where the group nets, else 0."""
    sides: dict[tuple[int, int], float] = {}
    for p in book.account_positions[row]:
        key = (int(book.pos_key[p]), int(book.pos["sign"][p] < 0))
        sides[key] = sides.get(key, 0.0) + _at(book._value["margin"], p)
    out = {}
    for (k, side), total in sides.items():
        other = sides.get((k, 1 - side), 0.0)
        if not book.key_single[k]:
            out[(k, side)] = total
        else:
            out[(k, side)] = max(0.0, total - other)
    return out


def account_view(book: AccountBook, row: int) -> dict[str, Any]:
    """Figures and positions of one (marked) account row, with liquidation distances."""
    figures = book.figures
    policy = book.policy_for(book.group_paths[row])
    view: dict[str, Any] = {
        "account_id": book.account_ids[row],
        "group_path": book.group_paths[row],
        "active": bool(book.active[row]),
        "cost_convention": "by_trade" if book.by_trade[row] else "by_date",
        "margin_price": MARGIN_PRICE_TYPES[book.margin_price[row]],
        "single_side": "exchange" if book.single_side[row] else "off",
        "fee_multiplier": float(book.fee_multiplier[row]),
        "policy": policy.match,
        "trading_day": book.trading_day,
    }
    for name in ACCOUNT_COLUMNS:
        view[name] = float(book.acc[name][row])
    for name in FIGURES:
        view[name] = float(getattr(figures, name)[row])
    view["positions"] = positions_of(book, row)
    view["contract_distances"] = contract_distances(book, row)
    return view


def contract_distances(book: AccountBook, row: int) -> list[dict[str, Any]]:
    """Per held contract: the adverse move of that contract alone that takes the account's
    risk degree to 100% (linear, on the sides charged now), and whether the contract is locked
    at its limit against the account."""
    equity = book._fig["equity"][row]
    margin = book._fig["margin"][row]
    v = book._value
    by_contract: dict[int, dict[str, float]] = {}
    for p in book.account_positions[row]:
        if book.pos["volume"][p] <= 0:
            continue
        c = int(book.pos_contract[p])
        d = by_contract.setdefault(c, {"notional": 0.0, "sensitivity": 0.0, "locked": 0.0})
        d["notional"] += _at(v["notional"], p)
        d["sensitivity"] += _at(v["margin_sensitivity"], p)
        d["locked"] = max(d["locked"], _at(v["locked"], p))
    out = []
    for c, d in sorted(by_contract.items(), key=lambda kv: book.contracts.names[kv[0]]):
        denom = d["notional"] - d["sensitivity"]
        if equity <= 0:
            distance = 0.0
        else:
            distance = max(0.0, (equity - margin) / denom) if denom > 0 else float("inf")
        out.append({"instrument": book.contracts.names[c], "distance": float(distance),
                    "limit_locked": bool(d["locked"])})  # fmt: skip
    return out


def unpriced_accounts(book: AccountBook) -> np.ndarray | None:
    """Per account: does it hold a contract with no price yet? None when all are priced."""
    if not np.isnan(book.contracts.last[: len(book.contracts)]).any():
        return None  # the common case, answered without touching the positions
    n = book.n_positions
    held = book.pos["volume"][:n] > 0
    missing = np.isnan(book.contracts.last[book.pos_contract[:n]]) & held
    if not missing.any():
        return None
    return np.bincount(book.pos_account[:n], weights=missing, minlength=book.n_accounts) > 0


def limit_locked_accounts(book: AccountBook) -> np.ndarray:
    """Per account: does it hold a position locked at its limit against it (cannot exit)?"""
    n = book.n_positions
    c = book.contracts
    contract = book.pos_contract[:n]
    last = c.last[contract]
    sign = book.pos["sign"][:n]
    with np.errstate(invalid="ignore"):
        locked = (book.pos["volume"][:n] > 0) & (
            ((sign > 0) & (last <= c.lower_limit[contract]))
            | ((sign < 0) & (last >= c.upper_limit[contract]))
        )
    return np.bincount(book.pos_account[:n], weights=locked, minlength=book.n_accounts) > 0


def net_exposure_by_commodity(book: AccountBook) -> dict[str, float]:
    """Net futures exposure in physical units (lots × multiplier, shorts negative), over the
    commodities of contracts some position refers to (priced-only contracts add nothing)."""
    n = book.n_positions
    if n == 0:
        return {}
    c = book.contracts
    active = book.active[book.pos_account[:n]]
    units = book.pos["sign"][:n] * book.pos["volume"][:n] * book.pos["multiplier"][:n] * active
    per_contract = np.bincount(book.pos_contract[:n], weights=units, minlength=len(c))
    out: dict[str, float] = {}
    for row in np.flatnonzero(c.n_positions[: len(c)] > 0).tolist():
        commodity = c.commodity[row]
        out[commodity] = out.get(commodity, 0.0) + float(per_contract[row])
    return out


def state_bytes(book: AccountBook) -> int:
    """Memory held by this book's state: numpy columns plus id maps and lists."""
    arrays = [book.active, book.by_trade, book.margin_price, book.single_side,
              book.fee_multiplier, book.pos_account, book.pos_contract, book.pos_key,
              book.key_account, book.key_ex_single, book.key_single,
              *book.acc.values(), *book.order_frozen.values(), *book.pos.values(),
              *book._factor.values(), *book._value.values(), *book._fig.values()]  # fmt: skip
    total = sum(a.nbytes for a in arrays)
    for obj in (book.account_index, book.account_ids, book.group_paths, book.position_index,
                book.account_positions, book.key_index, book.orders):  # fmt: skip
        total += deep_size(obj)
    return total
