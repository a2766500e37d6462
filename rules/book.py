"""AccountBook: the columnar state of many accounts and their positions.

Pure (numpy, no I/O) so the same code marks accounts live in an AccountShard actor and over
history in a backtest. Accounts and positions live in growable numpy columns; a dict maps ids to
rows, so an event touches one row and a price update re-marks every account in a few vector ops.
A closed position keeps its row at volume 0 (ids stay stable; `compact` is not needed at the
sizes one shard holds).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from rules.account_math import AccountFigures, risk_degree
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
POSITION_COLUMNS = ("volume", "today_volume", "cost_price", "sign", "multiplier", "margin_rate")
FIGURES = ("static_equity", "position_profit", "equity", "margin", "available", "risk_degree")


class BookError(ValueError):
    """An event the book cannot apply (unknown account, closing more than is held, ...)."""


def _grow(arr: np.ndarray, n: int) -> np.ndarray:
    if n <= arr.shape[0]:
        return arr
    new = np.zeros(max(n, 2 * arr.shape[0], 64), dtype=arr.dtype)
    new[: arr.shape[0]] = arr
    return new


class ContractIndex:
    """Instruments this book has seen, each with a row for price and spec columns."""

    def __init__(self, table: ContractTable) -> None:
        self.table = table
        self.index: dict[str, int] = {}
        self.names: list[str] = []
        self.last = np.zeros(0)
        self.upper_limit = np.zeros(0)
        self.lower_limit = np.zeros(0)
        self.multiplier = np.zeros(0)
        self.margin_rate = np.zeros(0)
        self.commodity: list[str] = []
        self.specs: list = []

    def row(self, instrument: str) -> int:
        """Row of an instrument, registering it on first sight (UnknownContract if no spec)."""
        row = self.index.get(instrument)
        if row is not None:
            return row
        spec = self.table.spec(instrument)
        row = len(self.names)
        n = row + 1
        self.last = _grow(self.last, n)
        self.upper_limit = _grow(self.upper_limit, n)
        self.lower_limit = _grow(self.lower_limit, n)
        self.multiplier = _grow(self.multiplier, n)
        self.margin_rate = _grow(self.margin_rate, n)
        self.last[row] = np.nan
        self.upper_limit[row] = np.nan
        self.lower_limit[row] = np.nan
        self.multiplier[row] = spec.multiplier
        self.margin_rate[row] = spec.margin_rate
        self.index[instrument] = row
        self.names.append(instrument)
        self.commodity.append(spec.commodity)
        self.specs.append(spec)
        return row

    def __len__(self) -> int:
        return len(self.names)


class AccountBook:
    """Accounts and positions of one shard, marked to market as columns."""

    def __init__(self, table: ContractTable, margin_markup: float = 0.0) -> None:
        self.contracts = ContractIndex(table)
        self.default_markup = margin_markup
        self.account_index: dict[str, int] = {}
        self.account_ids: list[str] = []
        self.group_paths: list[str] = []
        self.account_positions: list[list[int]] = []  # position rows per account row
        self.active = np.zeros(0, dtype=bool)
        self.acc = {name: np.zeros(0) for name in ACCOUNT_COLUMNS}
        self.position_index: dict[tuple[int, int, int], int] = {}
        self.pos_account = np.zeros(0, dtype=np.int64)
        self.pos_contract = np.zeros(0, dtype=np.int64)
        self.pos = {name: np.zeros(0) for name in POSITION_COLUMNS}
        self.n_positions = 0
        self._fig = {name: np.zeros(0) for name in FIGURES}
        self._pos_pnl = np.zeros(0)
        self._pos_margin = np.zeros(0)
        self._marked_positions = -1  # positions covered by the caches; -1: never marked
        # Per-position factors so a mark is two gathers: profit = units × (price − cost),
        # margin = price × margin_units (units = sign × volume × multiplier).
        self._units = np.zeros(0)
        self._margin_units = np.zeros(0)
        self._dirty: list[int] = []  # position rows whose factors must be recomputed
        self.full_marks = 0
        self.incremental_marks = 0

    # ---- accounts -------------------------------------------------------------------------

    @property
    def n_accounts(self) -> int:
        return len(self.account_ids)

    def _account_row(self, account_id: str, create: bool = False) -> int:
        row = self.account_index.get(account_id)
        if row is not None:
            return row
        if not create:
            raise BookError(f"unknown account {account_id!r}")
        row = len(self.account_ids)
        self.account_index[account_id] = row
        self.account_ids.append(account_id)
        self.group_paths.append("")
        self.account_positions.append([])
        self.active = _grow(self.active, row + 1)
        for name in ACCOUNT_COLUMNS:
            self.acc[name] = _grow(self.acc[name], row + 1)
        self.acc["margin_markup"][row] = self.default_markup
        return row

    def apply_snapshot(self, rec: Mapping[str, Any]) -> int:
        """Replace an account's figures and positions with a snapshot (idempotent)."""
        row = self._account_row(str(rec["account_id"]), create=True)
        self.active[row] = True
        self.group_paths[row] = str(rec.get("group_path", ""))
        for name in ACCOUNT_COLUMNS:
            if name in rec:
                self.acc[name][row] = float(rec[name])
            elif name != "margin_markup":
                self.acc[name][row] = 0.0
        for pos_row in self.account_positions[row]:
            self.pos["volume"][pos_row] = 0.0
            self.pos["today_volume"][pos_row] = 0.0
        self._dirty.extend(self.account_positions[row])
        for p in rec.get("positions", ()):
            pos_row = self._position_row(row, str(p["instrument"]), _sign(p["direction"]))
            volume = float(p["volume"])
            if not np.isfinite(volume) or volume < 0:
                raise BookError(f"position volume {volume!r} for {rec['account_id']}")
            self.pos["volume"][pos_row] = volume
            self._dirty.append(pos_row)
            self.pos["today_volume"][pos_row] = float(p.get("today_volume", 0.0))
            self.pos["cost_price"][pos_row] = float(p["cost_price"])
        return row

    def apply_update(self, rec: Mapping[str, Any]) -> int:
        row = self._account_row(str(rec["account_id"]))
        if "group_path" in rec:
            self.group_paths[row] = str(rec["group_path"])
        for name in ACCOUNT_COLUMNS:
            if name in rec:
                self.acc[name][row] = float(rec[name])
        self._dirty.extend(self.account_positions[row])  # the markup may have changed
        return row

    def apply_transfer(self, account_id: str, amount: float, deposit: bool) -> int:
        if not np.isfinite(amount) or amount <= 0:
            raise BookError(f"transfer amount must be positive, got {amount!r}")
        row = self._account_row(account_id)
        self.acc["deposit" if deposit else "withdraw"][row] += amount
        return row

    def remove(self, account_id: str) -> int:
        row = self._account_row(account_id)
        self.active[row] = False
        return row

    # ---- positions ------------------------------------------------------------------------

    def _position_row(self, account_row: int, instrument: str, sign: int) -> int:
        contract = self.contracts.row(instrument)
        key = (account_row, contract, sign)
        row = self.position_index.get(key)
        if row is not None:
            return row
        row = self.n_positions
        self.n_positions += 1
        self.pos_account = _grow(self.pos_account, row + 1)
        self.pos_contract = _grow(self.pos_contract, row + 1)
        for name in POSITION_COLUMNS:
            self.pos[name] = _grow(self.pos[name], row + 1)
        self.pos_account[row] = account_row
        self.pos_contract[row] = contract
        self.pos["sign"][row] = sign
        self.pos["multiplier"][row] = self.contracts.multiplier[contract]
        self.pos["margin_rate"][row] = self.contracts.margin_rate[contract]
        self.position_index[key] = row
        self.account_positions[account_row].append(row)
        return row

    def apply_trade(self, rec: Mapping[str, Any]) -> int:
        """Apply a fill: open adds at an averaged cost, close realises profit against cost.

        `direction` is the order's (long buys, short sells); closing a long is a short order.
        """
        row = self._account_row(str(rec["account_id"]))
        order_sign = _sign(rec["direction"])
        offset = str(rec.get("offset", "open"))
        volume = float(rec["volume"])
        price = float(rec["price"])
        if not (np.isfinite(volume) and volume > 0 and np.isfinite(price)):
            raise BookError(f"trade volume/price not valid: {volume!r} @ {price!r}")
        self.acc["commission"][row] += float(rec.get("commission", 0.0))
        if offset == "open":
            p = self._position_row(row, str(rec["instrument"]), order_sign)
            held = self.pos["volume"][p]
            cost = self.pos["cost_price"][p]
            self.pos["cost_price"][p] = (cost * held + price * volume) / (held + volume)
            self.pos["volume"][p] = held + volume
            self._dirty.append(p)
            self.pos["today_volume"][p] += volume
            return row
        p = self._position_row(row, str(rec["instrument"]), -order_sign)
        held = self.pos["volume"][p]
        if volume > held + 1e-9:
            raise BookError(
                f"{rec['account_id']}: closing {volume:g} {rec['instrument']} but holds {held:g}"
            )
        sign = self.pos["sign"][p]
        mult = self.pos["multiplier"][p]
        self.acc["close_profit"][row] += sign * (price - self.pos["cost_price"][p]) * volume * mult
        self.pos["volume"][p] = held - volume
        self._dirty.append(p)
        if offset == "close_today":
            self.pos["today_volume"][p] = max(0.0, self.pos["today_volume"][p] - volume)
        else:
            yesterday = held - self.pos["today_volume"][p]
            self.pos["today_volume"][p] -= max(0.0, volume - yesterday)
        return row

    # ---- prices and marking ---------------------------------------------------------------

    def set_prices(
        self,
        instruments: Iterable[str],
        last: np.ndarray,
        upper_limit: np.ndarray | None = None,
        lower_limit: np.ndarray | None = None,
    ) -> np.ndarray:
        """Store the latest prices of instruments this book knows; returns their rows.

        Instruments no position refers to are ignored (a shard sees the whole market).
        """
        rows, src = [], []
        for i, name in enumerate(instruments):
            r = self.contracts.index.get(name)
            if r is not None:
                rows.append(r)
                src.append(i)
        rows_a = np.asarray(rows, dtype=np.int64)
        src_a = np.asarray(src, dtype=np.int64)
        if rows_a.size:
            self.contracts.last[rows_a] = last[src_a]
            if upper_limit is not None:
                self.contracts.upper_limit[rows_a] = upper_limit[src_a]
            if lower_limit is not None:
                self.contracts.lower_limit[rows_a] = lower_limit[src_a]
        return rows_a

    def _refresh_factors(self) -> None:
        """Recompute the per-position factors of rows that changed since the last mark."""
        n = self.n_positions
        if self._units.shape[0] < n:
            grown = _grow(self._units, n).shape[0]
            old = self._units.shape[0]
            self._units = _grow(self._units, grown)
            self._margin_units = _grow(self._margin_units, grown)
            self._dirty.extend(range(old, n))
        if not self._dirty:
            return
        rows = np.unique(np.fromiter(self._dirty, dtype=np.int64))
        rows = rows[rows < n]
        self._dirty.clear()
        lots = self.pos["volume"][rows] * self.pos["multiplier"][rows]
        rate = self.pos["margin_rate"][rows] + self.acc["margin_markup"][self.pos_account[rows]]
        self._units[rows] = self.pos["sign"][rows] * lots
        self._margin_units[rows] = lots * rate

    def _position_values(self, rows: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Floating profit and margin of position rows (all when None); where no price is known
        yet the cost price stands in (no profit, margin at cost)."""
        self._refresh_factors()
        n = self.n_positions
        sel = slice(0, n) if rows is None else rows
        contract = self.pos_contract[sel]
        cost = self.pos["cost_price"][sel]
        last = self.contracts.last[: len(self.contracts)]
        price = last[contract]
        if np.isnan(last).any():
            price = np.where(np.isnan(price), cost, price)
        return self._units[sel] * (price - cost), price * self._margin_units[sel]

    def _figures_of(self, acc_rows: np.ndarray, profit: np.ndarray, margin: np.ndarray) -> None:
        """Derive every account figure of `acc_rows` from its summed profit and margin."""
        acc = self.acc
        static = acc["pre_balance"][acc_rows] + acc["deposit"][acc_rows] - acc["withdraw"][acc_rows]
        equity = static + acc["close_profit"][acc_rows] + profit - acc["commission"][acc_rows]
        frozen = acc["frozen_margin"][acc_rows] + acc["frozen_commission"][acc_rows]
        f = self._fig
        f["static_equity"][acc_rows] = static
        f["position_profit"][acc_rows] = profit
        f["equity"][acc_rows] = equity
        f["margin"][acc_rows] = margin
        f["available"][acc_rows] = equity - margin - frozen
        f["risk_degree"][acc_rows] = risk_degree(margin, equity)

    @property
    def figures(self) -> AccountFigures:
        n = self.n_accounts
        for name in FIGURES:
            self._fig[name] = _grow(self._fig[name], n)
        return AccountFigures(**{name: self._fig[name][:n] for name in FIGURES})

    def mark(self) -> AccountFigures:
        """Full re-mark: every position and every account at the latest prices."""
        n, na = self.n_positions, self.n_accounts
        self._pos_pnl = _grow(self._pos_pnl, n)
        self._pos_margin = _grow(self._pos_margin, n)
        self._pos_pnl[:n], self._pos_margin[:n] = self._position_values(None)
        figures = self.figures  # grows the figure columns to the account count
        accounts = self.pos_account[:n]
        profit = np.bincount(accounts, weights=self._pos_pnl[:n], minlength=na)
        margin = np.bincount(accounts, weights=self._pos_margin[:n], minlength=na)
        self._figures_of(np.arange(na), profit, margin)
        self._marked_positions = n
        self.full_marks += 1
        return figures

    def mark_contracts(self, contract_rows: np.ndarray, full_above: float = 0.05) -> np.ndarray:
        """Incremental re-mark after prices of `contract_rows` changed.

        Only positions in those contracts are revalued and only the accounts holding them are
        re-summed; returns those account rows. Falls back to a full mark when most contracts
        moved (measured: past ~5% of contracts a full mark is cheaper, same figures) or
        positions were added since the last full mark.
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
        self._pos_pnl[pos_rows], self._pos_margin[pos_rows] = self._position_values(pos_rows)
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
        pos_rows = np.flatnonzero(mask[self.pos_account[: self.n_positions]])
        self._pos_pnl[pos_rows], self._pos_margin[pos_rows] = self._position_values(pos_rows)
        self._resum(mask, pos_rows)

    def _resum(self, accounts_mask: np.ndarray, pos_rows: np.ndarray | None = None) -> None:
        """Exact sums (not deltas, so nothing drifts) of all positions of the masked accounts."""
        n, na = self.n_positions, self.n_accounts
        self.figures  # noqa: B018  (grows the figure columns)
        if pos_rows is None:
            pos_rows = np.flatnonzero(accounts_mask[self.pos_account[:n]])
        acc_rows = np.flatnonzero(accounts_mask)
        accounts = self.pos_account[pos_rows]
        profit = np.bincount(accounts, weights=self._pos_pnl[pos_rows], minlength=na)[acc_rows]
        margin = np.bincount(accounts, weights=self._pos_margin[pos_rows], minlength=na)[acc_rows]
        self._figures_of(acc_rows, profit, margin)

    def positions_of(self, account_id: str) -> list[dict[str, Any]]:
        row = self._account_row(account_id)
        out = []
        for p in self.account_positions[row]:
            if self.pos["volume"][p] <= 0:
                continue
            contract = int(self.pos_contract[p])
            sign = self.pos["sign"][p]
            last = self.contracts.last[contract]
            out.append(
                {
                    "instrument": self.contracts.names[contract],
                    "direction": "long" if sign > 0 else "short",
                    "volume": float(self.pos["volume"][p]),
                    "today_volume": float(self.pos["today_volume"][p]),
                    "cost_price": float(self.pos["cost_price"][p]),
                    "last": float(last),
                    "multiplier": float(self.pos["multiplier"][p]),
                    "margin_rate": float(
                        self.pos["margin_rate"][p] + self.acc["margin_markup"][row]
                    ),
                    "upper_limit": float(self.contracts.upper_limit[contract]),
                    "lower_limit": float(self.contracts.lower_limit[contract]),
                    "commodity": self.contracts.commodity[contract],
                    "exchange": self.contracts.specs[contract].exchange,
                    "tick_size": float(self.contracts.specs[contract].tick_size),
                }
            )
        return out

    def account_view(self, account_id: str) -> dict[str, Any]:
        """Figures and positions of one account, marked now."""
        row = self._account_row(account_id)
        self.mark_accounts(np.array([row]))
        figures = self.figures
        view: dict[str, Any] = {"account_id": account_id, "group_path": self.group_paths[row]}
        view["active"] = bool(self.active[row])
        for name in ACCOUNT_COLUMNS:
            view[name] = float(self.acc[name][row])
        for name in (
            "static_equity",
            "position_profit",
            "equity",
            "margin",
            "available",
            "risk_degree",
        ):
            view[name] = float(getattr(figures, name)[row])
        view["positions"] = self.positions_of(account_id)
        return view

    def state_bytes(self) -> int:
        """Memory held by this book's state: numpy columns plus id maps and lists."""
        arrays = [
            self.active,
            self.pos_account,
            self.pos_contract,
            *self.acc.values(),
            *self.pos.values(),
        ]
        total = sum(a.nbytes for a in arrays)
        for obj in (
            self.account_index,
            self.account_ids,
            self.group_paths,
            self.position_index,
            self.account_positions,
        ):
            total += _deep_size(obj)
        return total

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


def _deep_size(obj: Any) -> int:
    """Bytes of a dict/list of small keys (ids, tuples): the Python side of the state."""
    size = sys.getsizeof(obj)
    items = obj.items() if isinstance(obj, dict) else enumerate(obj)
    for key, value in items:
        size += sys.getsizeof(key) if isinstance(obj, dict) else 0
        size += sys.getsizeof(value) if not isinstance(value, list) else _deep_size(value)
    return size


def _sign(direction: Any) -> int:
    text = getattr(direction, "value", direction)
    if text in ("long", "buy", 1, "1"):
        return 1
    if text in ("short", "sell", -1, "-1"):
        return -1
    raise BookError(f"direction must be long or short, got {direction!r}")
