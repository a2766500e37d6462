"""AccountBook: the columnar state of many accounts and their positions, CTP-exact.

Pure (numpy, no I/O) so the same code marks accounts live in an AccountShard actor and over
history in a backtest. Accounts and positions live in growable numpy columns; dicts map ids to
rows, so an event touches one row and a price update re-marks accounts in a few vector ops.

Marking is cheap because each position keeps factors that change only with its own events:

    profit        = units × price − cost_value       units = sign × volume × multiplier
    margin        = price × margin_units + fixed_margin   (broker rate; the same for exchange)

`cost_value` carries the cost convention (逐日盯市 by date, 逐笔 by trade) and the margin price
type decides whether margin moves with the last price (`margin_units`) or is fixed
(`fixed_margin`). A closed position keeps its row at volume 0, so ids stay stable.
"""

from __future__ import annotations

import fnmatch
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rules.account_math import (
    COST_CONVENTIONS,
    FIGURES,
    MARGIN_PRICE_TYPES,
    AccountFigures,
    account_figures,
)
from rules.contracts import ContractTable

ACCOUNT_COLUMNS = (
    "pre_balance",
    "deposit",
    "withdraw",
    "close_profit",
    "commission",
    "frozen_margin",
    "frozen_commission",
    "margin_markup",
)
POSITION_COLUMNS = (
    "volume",
    "today_volume",
    "open_price",  # average open price of every lot held (逐笔 cost, "average" margin price)
    "today_open_price",  # average open price of today's lots (逐日盯市 cost of today's lots)
    "sign",
    "multiplier",
    "margin_rate",  # the exchange's rate; the broker's adds the account's markup
)
FACTORS = ("units", "abs_units", "cost_value", "margin_units", "fixed_margin",
           "ex_margin_units", "ex_fixed_margin")  # fmt: skip
SUMS = ("profit", "margin", "exchange_margin", "notional", "margin_sensitivity")


class BookError(ValueError):
    """An event the book cannot apply (unknown account, closing more than is held, ...)."""


@dataclass(frozen=True, slots=True)
class AccountPolicy:
    """How a group of accounts is marked: which accounts (`match`, a glob on the group path),
    the cost convention, CTP's margin price type and the broker's markup over the exchange rate."""

    match: str = "*"
    cost: str = "by_date"
    margin_price: str = "last"
    markup: float = 0.0

    def __post_init__(self) -> None:
        if self.cost not in COST_CONVENTIONS:
            raise ValueError(f"policy {self.match!r}: cost must be one of {COST_CONVENTIONS}")
        if self.margin_price not in MARGIN_PRICE_TYPES:
            raise ValueError(
                f"policy {self.match!r}: margin_price must be one of {MARGIN_PRICE_TYPES}"
            )
        if not 0 <= self.markup < 1:
            raise ValueError(f"policy {self.match!r}: markup must be in [0, 1)")


def _grow(arr: np.ndarray, n: int) -> np.ndarray:
    if n <= arr.shape[0]:
        return arr
    new = np.zeros(max(n, 2 * arr.shape[0], 64), dtype=arr.dtype)
    new[: arr.shape[0]] = arr
    return new


class ContractIndex:
    """Instruments this book has seen, each with a row for prices and spec columns."""

    def __init__(self, table: ContractTable) -> None:
        self.table = table
        self.index: dict[str, int] = {}
        self.names: list[str] = []
        self.last = np.zeros(0)
        self.pre_settlement = np.zeros(0)
        self.upper_limit = np.zeros(0)
        self.lower_limit = np.zeros(0)
        self.commodity: list[str] = []
        self.specs: list = []

    def row(self, instrument: str) -> int:
        """Row of an instrument, registering it on first sight (UnknownContract if no spec)."""
        row = self.index.get(instrument)
        if row is not None:
            return row
        spec = self.table.spec(instrument)
        row = len(self.names)
        for name in ("last", "pre_settlement", "upper_limit", "lower_limit"):
            arr = _grow(getattr(self, name), row + 1)
            arr[row] = np.nan
            setattr(self, name, arr)
        self.index[instrument] = row
        self.names.append(instrument)
        self.commodity.append(spec.commodity)
        self.specs.append(spec)
        return row

    def __len__(self) -> int:
        return len(self.names)


class AccountBook:
    """Accounts and positions of one shard, marked to market as columns."""

    def __init__(
        self,
        table: ContractTable,
        margin_markup: float = 0.0,
        policies: Sequence[AccountPolicy] = (),
    ) -> None:
        self.contracts = ContractIndex(table)
        # First matching policy wins; the last resort marks by date on the last price.
        self.policies = [*policies, AccountPolicy(markup=margin_markup)]
        self.account_index: dict[str, int] = {}
        self.account_ids: list[str] = []
        self.group_paths: list[str] = []
        self.account_positions: list[list[int]] = []  # position rows per account row
        self.active = np.zeros(0, dtype=bool)
        self.by_trade = np.zeros(0, dtype=bool)  # cost convention 逐笔 (else 逐日盯市)
        self.margin_price = np.zeros(0, dtype=np.int8)  # index into MARGIN_PRICE_TYPES
        self.acc = {name: np.zeros(0) for name in ACCOUNT_COLUMNS}
        self.position_index: dict[tuple[int, int, int], int] = {}
        self.pos_account = np.zeros(0, dtype=np.int64)
        self.pos_contract = np.zeros(0, dtype=np.int64)
        self.pos = {name: np.zeros(0) for name in POSITION_COLUMNS}
        self.n_positions = 0
        self._factor = {name: np.zeros(0) for name in FACTORS}
        self._value = {name: np.zeros(0) for name in SUMS}  # per position, as of the last mark
        self._fig = {name: np.zeros(0) for name in FIGURES}
        self._dirty: list[int] = []  # position rows whose factors must be recomputed
        self._marked_positions = -1  # positions covered by the caches; -1: never marked
        self.full_marks = 0
        self.incremental_marks = 0

    # ---- accounts -------------------------------------------------------------------------

    @property
    def n_accounts(self) -> int:
        return len(self.account_ids)

    def row_of(self, account_id: str) -> int:
        row = self.account_index.get(account_id)
        if row is None:
            raise BookError(f"unknown account {account_id!r}")
        return row

    def _new_account(self, account_id: str) -> int:
        row = len(self.account_ids)
        self.account_index[account_id] = row
        self.account_ids.append(account_id)
        self.group_paths.append("")
        self.account_positions.append([])
        self.active = _grow(self.active, row + 1)
        self.by_trade = _grow(self.by_trade, row + 1)
        self.margin_price = _grow(self.margin_price, row + 1)
        for name in ACCOUNT_COLUMNS:
            self.acc[name] = _grow(self.acc[name], row + 1)
        return row

    def policy_for(self, group_path: str) -> AccountPolicy:
        return next(p for p in self.policies if fnmatch.fnmatchcase(group_path, p.match))

    def _apply_policy(self, row: int, markup: float | None) -> None:
        policy = self.policy_for(self.group_paths[row])
        self.by_trade[row] = policy.cost == "by_trade"
        self.margin_price[row] = MARGIN_PRICE_TYPES.index(policy.margin_price)
        self.acc["margin_markup"][row] = policy.markup if markup is None else markup
        self._dirty.extend(self.account_positions[row])

    def apply_snapshot(self, rec: Mapping[str, Any]) -> int:
        """Replace an account's figures and positions with a snapshot (idempotent)."""
        account_id = str(rec["account_id"])
        positions = [self._parse_position(account_id, p) for p in rec.get("positions", ())]
        row = self.account_index.get(account_id)
        if row is None:
            row = self._new_account(account_id)
        self.active[row] = True
        self.group_paths[row] = str(rec.get("group_path", ""))
        for name in ACCOUNT_COLUMNS[:-1]:
            self.acc[name][row] = _number(rec.get(name, 0.0), name, account_id)
        for pos_row in self.account_positions[row]:
            self.pos["volume"][pos_row] = 0.0
            self.pos["today_volume"][pos_row] = 0.0
        for instrument, sign, values in positions:
            pos_row = self._position_row(row, instrument, sign)
            for name, value in values.items():
                self.pos[name][pos_row] = value
        markup = rec.get("margin_markup")
        self._apply_policy(
            row, None if markup is None else _number(markup, "margin_markup", account_id)
        )
        return row

    def _parse_position(self, account_id: str, p: Mapping[str, Any]) -> tuple[str, int, dict]:
        """Validate one snapshot position before anything is changed (a bad one changes nothing)."""
        instrument = str(p["instrument"])
        self.contracts.table.spec(instrument)  # UnknownContract before any state changes
        volume = _number(p["volume"], "volume", account_id)
        today = _number(p.get("today_volume", 0.0), "today_volume", account_id)
        if volume < 0 or not 0 <= today <= volume:
            raise BookError(f"{account_id}: position volume {volume:g} / today {today:g} not valid")
        open_price = _number(p.get("open_price", p.get("cost_price")), "open_price", account_id)
        today_open = _number(p.get("today_open_price", open_price), "today_open_price", account_id)
        values = {"volume": volume, "today_volume": today, "open_price": open_price,
                  "today_open_price": today_open}  # fmt: skip
        return instrument, _sign(p["direction"]), values

    def apply_update(self, rec: Mapping[str, Any]) -> int:
        row = self.row_of(str(rec["account_id"]))
        for name in ACCOUNT_COLUMNS[:-1]:
            if name in rec:
                self.acc[name][row] = _number(rec[name], name, rec["account_id"])
        if "group_path" in rec:
            self.group_paths[row] = str(rec["group_path"])
        markup = rec.get("margin_markup")
        if "group_path" in rec or markup is not None:
            self._apply_policy(row, None if markup is None else float(markup))
        return row

    def apply_transfer(self, account_id: str, amount: float, deposit: bool) -> int:
        if not np.isfinite(amount) or amount <= 0:
            raise BookError(f"transfer amount must be positive, got {amount!r}")
        row = self.row_of(account_id)
        self.acc["deposit" if deposit else "withdraw"][row] += amount
        return row

    def remove(self, account_id: str) -> int:
        row = self.row_of(account_id)
        self.active[row] = False
        return row

    # ---- positions ------------------------------------------------------------------------

    def _position_row(self, account_row: int, instrument: str, sign: int) -> int:
        contract = self.contracts.row(instrument)
        key = (account_row, contract, sign)
        row = self.position_index.get(key)
        if row is None:
            row = self.n_positions
            self.n_positions += 1
            self.pos_account = _grow(self.pos_account, row + 1)
            self.pos_contract = _grow(self.pos_contract, row + 1)
            for name in POSITION_COLUMNS:
                self.pos[name] = _grow(self.pos[name], row + 1)
            spec = self.contracts.specs[contract]
            self.pos_account[row] = account_row
            self.pos_contract[row] = contract
            self.pos["sign"][row] = sign
            self.pos["multiplier"][row] = spec.multiplier
            self.pos["margin_rate"][row] = spec.margin_rate
            self.position_index[key] = row
            self.account_positions[account_row].append(row)
        self._dirty.append(row)
        return row

    def apply_trade(self, rec: Mapping[str, Any]) -> int:
        """Apply a fill. `direction` is the order's (long buys, short sells).

        Open: averages the open prices (all lots and today's lots). Close: `close_today` closes
        today's lots (SHFE/INE), `close` yesterday's first (first in, first out); close profit is
        against the previous settlement for yesterday's lots and the open price for today's
        (逐日盯市), or against the average open price (逐笔), by the account's convention.
        """
        account_id = str(rec["account_id"])
        row = self.row_of(account_id)
        order_sign = _sign(rec["direction"])
        offset = str(rec.get("offset", "open"))
        volume = _number(rec["volume"], "volume", account_id)
        price = _number(rec["price"], "price", account_id)
        if volume <= 0:
            raise BookError(f"{account_id}: trade volume must be positive, got {volume:g}")
        if offset not in ("open", "close", "close_today"):
            raise BookError(f"{account_id}: offset {offset!r} not one of open/close/close_today")
        instrument = str(rec["instrument"])
        if offset == "open":
            p = self._position_row(row, instrument, order_sign)
            held, today = self.pos["volume"][p], self.pos["today_volume"][p]
            self.pos["open_price"][p] = (self.pos["open_price"][p] * held + price * volume) / (
                held + volume
            )
            self.pos["today_open_price"][p] = (
                self.pos["today_open_price"][p] * today + price * volume
            ) / (today + volume)
            self.pos["volume"][p] = held + volume
            self.pos["today_volume"][p] = today + volume
        else:
            p = self._close(row, account_id, instrument, -order_sign, offset, volume, price)
        self.acc["commission"][row] += _number(rec.get("commission", 0.0), "commission", account_id)
        return row

    def _close(self, row: int, account_id: str, instrument: str, sign: int, offset: str,
               volume: float, price: float) -> int:  # fmt: skip
        key = (row, self.contracts.index.get(instrument, -1), sign)
        p = self.position_index.get(key)
        held = self.pos["volume"][p] if p is not None else 0.0
        today = self.pos["today_volume"][p] if p is not None else 0.0
        available = today if offset == "close_today" else held
        if p is None or volume > available + 1e-9:
            what = "today's lots" if offset == "close_today" else "lots"
            raise BookError(
                f"{account_id}: closing {volume:g} {instrument} but holds {available:g} {what}"
            )
        from_today = volume if offset == "close_today" else max(0.0, volume - (held - today))
        from_yesterday = volume - from_today
        c = int(self.pos_contract[p])
        mult = self.pos["multiplier"][p]
        pre = self.contracts.pre_settlement[c]
        if self.by_trade[row]:
            cost = self.pos["open_price"][p] * volume
        else:
            yd_cost = pre if np.isfinite(pre) else self.pos["open_price"][p]
            cost = yd_cost * from_yesterday + self.pos["today_open_price"][p] * from_today
        self.acc["close_profit"][row] += sign * (price * volume - cost) * mult
        self.pos["volume"][p] = held - volume
        self.pos["today_volume"][p] = today - from_today
        self._dirty.append(p)
        return p

    # ---- prices ---------------------------------------------------------------------------

    def set_prices(
        self,
        instruments: Iterable[str],
        last: np.ndarray,
        upper_limit: np.ndarray | None = None,
        lower_limit: np.ndarray | None = None,
        pre_settlement: np.ndarray | None = None,
    ) -> np.ndarray:
        """Store the latest prices of instruments this book knows; returns their rows.

        Instruments no position refers to are ignored (a shard sees the whole market). A new
        previous settlement (a new trading day) changes the cost and margin of its positions.
        """
        rows, src = [], []
        for i, name in enumerate(instruments):
            r = self.contracts.index.get(name)
            if r is not None:
                rows.append(r)
                src.append(i)
        rows_a = np.asarray(rows, dtype=np.int64)
        if not rows_a.size:
            return rows_a
        src_a = np.asarray(src, dtype=np.int64)
        c = self.contracts
        c.last[rows_a] = last[src_a]
        for name, values in (("upper_limit", upper_limit), ("lower_limit", lower_limit)):
            if values is not None:
                ok = np.isfinite(values[src_a])
                getattr(c, name)[rows_a[ok]] = values[src_a][ok]
        if pre_settlement is not None:
            new = pre_settlement[src_a]
            old = c.pre_settlement[rows_a]
            moved = np.isfinite(new) & ~(new == old)
            if moved.any():
                c.pre_settlement[rows_a[moved]] = new[moved]
                changed = np.zeros(len(c), dtype=bool)
                changed[rows_a[moved]] = True
                pos_rows = np.flatnonzero(changed[self.pos_contract[: self.n_positions]])
                self._dirty.extend(pos_rows.tolist())
                # A settlement replacing a known one is a new trading day: today's lots are
                # yesterday's now (their cost becomes the new previous settlement).
                new_day = np.zeros(len(c), dtype=bool)
                new_day[rows_a[moved & np.isfinite(old)]] = True
                self.pos["today_volume"][pos_rows[new_day[self.pos_contract[pos_rows]]]] = 0.0
        return rows_a

    # ---- marking --------------------------------------------------------------------------

    def _refresh_factors(self) -> None:
        """Recompute the factors of position rows that changed since the last mark."""
        n = self.n_positions
        if self._factor["units"].shape[0] < n:
            old = self._factor["units"].shape[0]
            for name in FACTORS:
                self._factor[name] = _grow(self._factor[name], n)
            self._dirty.extend(range(old, n))
        if not self._dirty:
            return
        rows = np.unique(np.fromiter(self._dirty, dtype=np.int64))
        rows = rows[rows < n]
        self._dirty.clear()
        pos, acc = self.pos, self.pos_account[rows]
        volume, today = pos["volume"][rows], pos["today_volume"][rows]
        yesterday = volume - today
        lots = volume * pos["multiplier"][rows]
        sign = pos["sign"][rows]
        pre = self.contracts.pre_settlement[self.pos_contract[rows]]
        open_px, today_px = pos["open_price"][rows], pos["today_open_price"][rows]
        pre = np.where(np.isfinite(pre), pre, open_px)  # before the first tick of the day
        # 逐日盯市: yesterday's lots at the previous settlement, today's at their open price.
        by_date_px = np.divide(yesterday * pre + today * today_px, volume, out=open_px.copy(),
                               where=volume > 0)  # fmt: skip
        cost_px = np.where(self.by_trade[acc], open_px, by_date_px)
        f = self._factor
        f["units"][rows] = sign * lots
        f["abs_units"][rows] = lots
        f["cost_value"][rows] = sign * lots * cost_px
        kind = self.margin_price[acc]
        on_last = kind == MARGIN_PRICE_TYPES.index("last")
        fixed_px = np.choose(np.where(on_last, 0, kind), [pre, pre, open_px, by_date_px])
        ex_rate = pos["margin_rate"][rows]
        rate = ex_rate + self.acc["margin_markup"][acc]
        f["margin_units"][rows] = np.where(on_last, lots * rate, 0.0)
        f["fixed_margin"][rows] = np.where(on_last, 0.0, fixed_px * lots * rate)
        f["ex_margin_units"][rows] = np.where(on_last, lots * ex_rate, 0.0)
        f["ex_fixed_margin"][rows] = np.where(on_last, 0.0, fixed_px * lots * ex_rate)

    def _revalue(self, rows: np.ndarray | slice) -> None:
        """Per-position profit, margins, notional and margin sensitivity at the latest prices."""
        self._refresh_factors()
        n = self.n_positions
        for name in SUMS:
            self._value[name] = _grow(self._value[name], n)
        f, v = self._factor, self._value
        contract = self.pos_contract[rows]
        last = self.contracts.last[: len(self.contracts)]
        price = last[contract]
        if np.isnan(last).any():  # no tick yet: cost stands in (no profit, margin at cost)
            units = f["units"][rows]
            cost_px = np.divide(
                f["cost_value"][rows], units, out=np.zeros_like(units), where=units != 0
            )
            price = np.where(np.isnan(price), cost_px, price)
        v["profit"][rows] = f["units"][rows] * price - f["cost_value"][rows]
        margin = price * f["margin_units"][rows]
        v["margin"][rows] = margin + f["fixed_margin"][rows]
        v["exchange_margin"][rows] = price * f["ex_margin_units"][rows] + f["ex_fixed_margin"][rows]
        v["notional"][rows] = price * f["abs_units"][rows]
        v["margin_sensitivity"][rows] = np.sign(f["units"][rows]) * margin

    @property
    def figures(self) -> AccountFigures:
        n = self.n_accounts
        for name in FIGURES:
            self._fig[name] = _grow(self._fig[name], n)
        return AccountFigures(**{name: self._fig[name][:n] for name in FIGURES})

    def _sum_into_figures(self, acc_rows: np.ndarray, pos_rows: np.ndarray | slice) -> None:
        """Exact sums (not deltas, so nothing drifts) of positions into account figures."""
        na = self.n_accounts
        self.figures  # noqa: B018  (grows the figure columns)
        accounts = self.pos_account[pos_rows]
        sums = {name: np.bincount(accounts, weights=self._value[name][pos_rows], minlength=na)[acc_rows]
                for name in SUMS}  # fmt: skip
        a = self.acc
        figures = account_figures(
            a["pre_balance"][acc_rows] + a["deposit"][acc_rows] - a["withdraw"][acc_rows],
            a["close_profit"][acc_rows],
            a["commission"][acc_rows],
            a["frozen_margin"][acc_rows] + a["frozen_commission"][acc_rows],
            sums["profit"], sums["margin"], sums["exchange_margin"], sums["notional"],
            sums["margin_sensitivity"],
        )  # fmt: skip
        for name in FIGURES:
            self._fig[name][acc_rows] = getattr(figures, name)

    def mark(self) -> AccountFigures:
        """Full re-mark: every position and every account at the latest prices."""
        n = self.n_positions
        self._revalue(slice(0, n))
        self._sum_into_figures(np.arange(self.n_accounts), slice(0, n))
        self._marked_positions = n
        self.full_marks += 1
        return self.figures

    def mark_contracts(self, contract_rows: np.ndarray, full_above: float = 0.05) -> np.ndarray:
        """Incremental re-mark after prices of `contract_rows` changed.

        Only positions in those contracts are revalued and only the accounts holding them are
        re-summed; returns those (active) account rows. Falls back to a full mark, with the same
        figures, when more than `full_above` of the contracts moved (measured: past ~5% a full
        mark is cheaper) or positions were added since the last full mark.
        """
        n = self.n_positions
        if self._marked_positions != n or contract_rows.size > full_above * len(self.contracts):
            self.mark()
            return np.flatnonzero(self.active[: self.n_accounts])
        changed = np.zeros(len(self.contracts), dtype=bool)
        changed[contract_rows] = True
        pos_rows = np.flatnonzero(changed[self.pos_contract[:n]])
        if pos_rows.size == 0:
            return pos_rows
        self._revalue(pos_rows)
        holders = np.zeros(self.n_accounts, dtype=bool)
        holders[self.pos_account[pos_rows]] = True
        self._resum(holders)
        self.incremental_marks += 1
        return np.flatnonzero(holders & self.active[: self.n_accounts])

    def mark_accounts(self, acc_rows: np.ndarray) -> None:
        """Re-mark some accounts after their own events (trade, transfer, snapshot)."""
        if self._marked_positions != self.n_positions:
            self.mark()
            return
        mask = np.zeros(self.n_accounts, dtype=bool)
        mask[acc_rows] = True
        self._resum(mask, revalue=True)

    def _resum(self, accounts_mask: np.ndarray, revalue: bool = False) -> None:
        pos_rows = np.flatnonzero(accounts_mask[self.pos_account[: self.n_positions]])
        if revalue:
            self._revalue(pos_rows)
        self._sum_into_figures(np.flatnonzero(accounts_mask), pos_rows)

    # ---- views ----------------------------------------------------------------------------

    def positions_of(self, account_id: str) -> list[dict[str, Any]]:
        row = self.row_of(account_id)
        self._refresh_factors()
        c = self.contracts
        out = []
        for p in self.account_positions[row]:
            if self.pos["volume"][p] <= 0:
                continue
            contract = int(self.pos_contract[p])
            spec = c.specs[contract]
            out.append({
                "instrument": c.names[contract],
                "direction": "long" if self.pos["sign"][p] > 0 else "short",
                "volume": float(self.pos["volume"][p]),
                "today_volume": float(self.pos["today_volume"][p]),
                "open_price": float(self.pos["open_price"][p]),
                "today_open_price": float(self.pos["today_open_price"][p]),
                "cost_price": float(self._factor["cost_value"][p] / self._factor["units"][p])
                if self._factor["units"].shape[0] > p and self._factor["units"][p] else float("nan"),
                "last": float(c.last[contract]),
                "pre_settlement": float(c.pre_settlement[contract]),
                "position_profit": float(self._value["profit"][p]) if self._value["profit"].shape[0] > p else 0.0,
                "margin": float(self._value["margin"][p]) if self._value["margin"].shape[0] > p else 0.0,
                "multiplier": float(self.pos["multiplier"][p]),
                "margin_rate": float(self.pos["margin_rate"][p] + self.acc["margin_markup"][row]),
                "exchange_margin_rate": float(self.pos["margin_rate"][p]),
                "upper_limit": float(c.upper_limit[contract]),
                "lower_limit": float(c.lower_limit[contract]),
                "commodity": c.commodity[contract],
                "exchange": spec.exchange,
                "tick_size": float(spec.tick_size),
            })  # fmt: skip
        return out

    def account_views(self, account_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Views of many accounts, marked together (one pass over the positions)."""
        rows = np.array([self.row_of(a) for a in account_ids], dtype=np.int64)
        if rows.size:
            self.mark_accounts(rows)
        return {a: self.account_view(a, mark=False) for a in account_ids}

    def account_view(self, account_id: str, mark: bool = True) -> dict[str, Any]:
        """Figures and positions of one account, marked now, with liquidation distances."""
        row = self.row_of(account_id)
        if mark:
            self.mark_accounts(np.array([row]))
        figures = self.figures
        policy = self.policy_for(self.group_paths[row])
        view: dict[str, Any] = {
            "account_id": account_id,
            "group_path": self.group_paths[row],
            "active": bool(self.active[row]),
            "cost_convention": "by_trade" if self.by_trade[row] else "by_date",
            "margin_price": MARGIN_PRICE_TYPES[self.margin_price[row]],
            "policy": policy.match,
        }
        for name in ACCOUNT_COLUMNS:
            view[name] = float(self.acc[name][row])
        for name in FIGURES:
            view[name] = float(getattr(figures, name)[row])
        view["positions"] = self.positions_of(account_id)
        view["contract_distances"] = self.contract_distances(row)
        return view

    def contract_distances(self, row: int) -> list[dict[str, Any]]:
        """Per held contract: the adverse move of that contract alone that takes the account's
        risk degree to 100%, and whether the contract is locked at its limit against us."""
        equity = self._fig["equity"][row]
        margin = self._fig["margin"][row]
        by_contract: dict[int, dict[str, float]] = {}
        for p in self.account_positions[row]:
            if self.pos["volume"][p] <= 0:
                continue
            c = int(self.pos_contract[p])
            d = by_contract.setdefault(c, {"notional": 0.0, "sensitivity": 0.0, "locked": 0.0})
            d["notional"] += self._value["notional"][p]
            d["sensitivity"] += self._value["margin_sensitivity"][p]
            last, sign = self.contracts.last[c], self.pos["sign"][p]
            if (sign > 0 and last <= self.contracts.lower_limit[c]) or (
                sign < 0 and last >= self.contracts.upper_limit[c]
            ):
                d["locked"] = 1.0
        out = []
        for c, d in sorted(by_contract.items(), key=lambda kv: self.contracts.names[kv[0]]):
            denom = d["notional"] - d["sensitivity"]
            distance = max(0.0, (equity - margin) / denom) if denom > 0 else float("inf")
            out.append({"instrument": self.contracts.names[c], "distance": float(distance),
                        "limit_locked": bool(d["locked"])})  # fmt: skip
        return out

    def unpriced_accounts(self) -> np.ndarray | None:
        """Per account: does it hold a contract with no price yet? None when all are priced
        (the common case, answered without touching the positions)."""
        nc = len(self.contracts)
        if not np.isnan(self.contracts.last[:nc]).any():
            return None
        n = self.n_positions
        held = self.pos["volume"][:n] > 0
        missing = np.isnan(self.contracts.last[self.pos_contract[:n]]) & held
        return np.bincount(self.pos_account[:n], weights=missing, minlength=self.n_accounts) > 0

    def limit_locked_accounts(self) -> np.ndarray:
        """Per account: does it hold a position locked at its limit against it (cannot exit)?"""
        n = self.n_positions
        c = self.pos_contract[:n]
        last = self.contracts.last[c]
        sign = self.pos["sign"][:n]
        locked = (self.pos["volume"][:n] > 0) & (
            ((sign > 0) & (last <= self.contracts.lower_limit[c]))
            | ((sign < 0) & (last >= self.contracts.upper_limit[c]))
        )
        return np.bincount(self.pos_account[:n], weights=locked, minlength=self.n_accounts) > 0

    def instruments_held(self, account_row: int) -> list[str]:
        return [
            self.contracts.names[int(self.pos_contract[p])]
            for p in self.account_positions[account_row]
            if self.pos["volume"][p] > 0
        ]

    def net_exposure_by_commodity(self) -> dict[str, float]:
        """Net futures exposure in physical units (lots × multiplier, shorts negative)."""
        n = self.n_positions
        if n == 0:
            return {}
        active = self.active[self.pos_account[:n]]
        units = self.pos["sign"][:n] * self.pos["volume"][:n] * self.pos["multiplier"][:n] * active
        per_contract = np.bincount(
            self.pos_contract[:n], weights=units, minlength=len(self.contracts)
        )
        out: dict[str, float] = {}
        for row, value in enumerate(per_contract):
            commodity = self.contracts.commodity[row]
            out[commodity] = out.get(commodity, 0.0) + float(value)
        return out

    def state_bytes(self) -> int:
        """Memory held by this book's state: numpy columns plus id maps and lists."""
        arrays = [self.active, self.by_trade, self.margin_price, self.pos_account, self.pos_contract,
                  *self.acc.values(), *self.pos.values(), *self._factor.values(),
                  *self._value.values(), *self._fig.values()]  # fmt: skip
        total = sum(a.nbytes for a in arrays)
        for obj in (self.account_index, self.account_ids, self.group_paths, self.position_index,
                    self.account_positions):  # fmt: skip
            total += _deep_size(obj)
        return total


def _deep_size(obj: Any) -> int:
    """Bytes of a dict/list of small keys (ids, tuples): the Python side of the state."""
    size = sys.getsizeof(obj)
    items = obj.items() if isinstance(obj, dict) else enumerate(obj)
    for key, value in items:
        size += sys.getsizeof(key) if isinstance(obj, dict) else 0
        size += sys.getsizeof(value) if not isinstance(value, list) else _deep_size(value)
    return size


def _number(value: Any, name: str, account_id: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise BookError(f"{account_id}: {name} {value!r} is not a number") from None
    if not np.isfinite(number):
        raise BookError(f"{account_id}: {name} is {number}")
    return number


def _sign(direction: Any) -> int:
    text = getattr(direction, "value", direction)
    if text in ("long", "buy", 1, "1"):
        return 1
    if text in ("short", "sell", -1, "-1"):
        return -1
    raise BookError(f"direction must be long or short, got {direction!r}")
