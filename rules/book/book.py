"""AccountBook: the columnar state of many accounts and their positions, CTP-exact.

Pure (numpy, no I/O) so the same code marks accounts live in an AccountShard actor and over
history in a backtest. Accounts and positions live in growable numpy columns; dicts map ids to
rows, so an event touches one row and a price update re-marks accounts in a few vector ops
(rules.book.marking). A closed position keeps its row at volume 0, so ids stay stable.

Events: snapshot, update, transfer, trade (rules.fees: commission from the fee table, close
order per exchange), order (rules.book.orders: frozen amounts), prices (every contract the
table knows is kept, held or not) and settlement (rules.book.settlement: the trading day).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from rules.account_math import FIGURES, MARGIN_PRICE_TYPES, AccountFigures
from rules.book import columns as cols
from rules.book import marking, orders, settlement, trades, views
from rules.book.columns import AccountPolicy, BookError, ContractIndex, grow, number, required
from rules.contracts import ContractTable


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
        self.account_keys: list[list[int]] = []  # single-side group keys per account row
        self.active = np.zeros(0, dtype=bool)
        self.by_trade = np.zeros(0, dtype=bool)  # cost convention 逐笔 (else 逐日盯市)
        self.margin_price = np.zeros(0, dtype=np.int8)  # index into MARGIN_PRICE_TYPES
        self.single_side = np.zeros(0, dtype=bool)  # policy single_side == "exchange"
        self.fee_multiplier = np.zeros(0)
        self.acc = {name: np.zeros(0) for name in cols.ACCOUNT_COLUMNS}
        # The part of frozen_margin / frozen_commission that working orders hold.
        self.order_frozen = {name: np.zeros(0) for name in ("frozen_margin", "frozen_commission")}
        self.orders: dict[tuple[int, str], tuple[float, float]] = {}
        self.position_index: dict[tuple[int, int, int], int] = {}
        self.pos_account = np.zeros(0, dtype=np.int64)
        self.pos_contract = np.zeros(0, dtype=np.int64)
        self.pos_key = np.zeros(0, dtype=np.int64)  # (account, margin group) key of a position
        self.pos = {name: np.zeros(0) for name in cols.POSITION_COLUMNS}
        self.n_positions = 0
        self.key_index: dict[tuple[int, int], int] = {}
        self.key_account = np.zeros(0, dtype=np.int64)
        self.key_ex_single = np.zeros(0, dtype=bool)  # the group's exchange nets two-way
        self.key_single = np.zeros(0, dtype=bool)  # ... and the account's policy lets it
        self.n_keys = 0
        self.trading_day: str | None = None  # known after the first settlement
        self._factor = {name: np.zeros(0) for name in cols.FACTORS}
        self._value = {
            name: np.zeros(0) for name in cols.VALUES
        }  # per position, as of the last mark
        self._fig = {name: np.zeros(0) for name in FIGURES}
        self._dirty: list[int] = []  # position rows whose factors must be recomputed
        self._pos_hedged: np.ndarray | None = None  # cache of marking.hedged_positions
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
        self.account_keys.append([])
        for name in ("active", "by_trade", "margin_price", "single_side", "fee_multiplier"):
            setattr(self, name, grow(getattr(self, name), row + 1))
        for columns in (self.acc, self.order_frozen):
            for name in columns:
                columns[name] = grow(columns[name], row + 1)
        return row

    def policy_for(self, group_path: str) -> AccountPolicy:
        return next(p for p in self.policies if fnmatch.fnmatchcase(group_path, p.match))

    def _apply_policy(self, row: int, markup: float | None) -> None:
        policy = self.policy_for(self.group_paths[row])
        self.by_trade[row] = policy.cost == "by_trade"
        self.margin_price[row] = MARGIN_PRICE_TYPES.index(policy.margin_price)
        self.acc["margin_markup"][row] = policy.markup if markup is None else markup
        self.single_side[row] = policy.single_side == "exchange"
        self.fee_multiplier[row] = policy.fee_multiplier
        keys = np.asarray(self.account_keys[row], dtype=np.int64)
        self.key_single[keys] = self.key_ex_single[keys] & self.single_side[row]
        self._dirty.extend(self.account_positions[row])

    def apply_snapshot(self, rec: Mapping[str, Any]) -> int:
        """Replace an account's figures and positions with a snapshot (idempotent)."""
        account_id = str(required(rec, "account_id", "snapshot"))
        positions = [self._parse_position(account_id, p) for p in rec.get("positions", ())]
        values = {
            name: number(rec.get(name, 0.0), name, account_id) for name in cols.ACCOUNT_COLUMNS[:-1]
        }
        row = self.account_index.get(account_id)
        if row is None:
            row = self._new_account(account_id)
        self.active[row] = True
        self.group_paths[row] = str(rec.get("group_path", ""))
        for name, value in values.items():
            self.acc[name][row] = value + (
                self.order_frozen[name][row] if name in self.order_frozen else 0.0
            )
        for pos_row in self.account_positions[row]:
            self.pos["volume"][pos_row] = 0.0
            self.pos["today_volume"][pos_row] = 0.0
        for instrument, sign, pos_values in positions:
            pos_row = self._position_row(row, instrument, sign)
            for name, value in pos_values.items():
                self.pos[name][pos_row] = value
        markup = rec.get("margin_markup")
        self._apply_policy(
            row, None if markup is None else number(markup, "margin_markup", account_id)
        )
        return row

    def _parse_position(self, account_id: str, p: Mapping[str, Any]) -> tuple[str, int, dict]:
        """Validate one snapshot position before anything is changed (a bad one changes nothing)."""
        instrument = str(required(p, "instrument", "snapshot position"))
        self.contracts.table.spec(instrument)  # UnknownContract before any state changes
        volume = number(required(p, "volume", "snapshot position"), "volume", account_id)
        today = number(p.get("today_volume", 0.0), "today_volume", account_id)
        if volume < 0 or not 0 <= today <= volume:
            raise BookError(f"{account_id}: position volume {volume:g} / today {today:g} not valid")
        if "open_price" not in p and "cost_price" not in p:
            raise BookError(
                f"{account_id}: snapshot position {instrument} misses required field 'open_price'"
            )
        open_price = number(p.get("open_price", p.get("cost_price")), "open_price", account_id)
        today_open = number(p.get("today_open_price", open_price), "today_open_price", account_id)
        values = {"volume": volume, "today_volume": today, "open_price": open_price,
                  "today_open_price": today_open}  # fmt: skip
        return instrument, cols.sign_of(required(p, "direction", "snapshot position")), values

    def apply_update(self, rec: Mapping[str, Any]) -> int:
        row = self.row_of(str(required(rec, "account_id", "update")))
        for name in cols.ACCOUNT_COLUMNS[:-1]:
            if name in rec:
                extra = self.order_frozen[name][row] if name in self.order_frozen else 0.0
                self.acc[name][row] = number(rec[name], name, rec["account_id"]) + extra
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

    def apply_order(self, rec: Mapping[str, Any]) -> int:
        """Freeze / release margin and commission of a working order (rules.book.orders)."""
        return orders.apply_order(self, rec)

    def apply_settlement(self, rec: Mapping[str, Any]) -> np.ndarray:
        """Roll every account to the next trading day (rules.book.settlement)."""
        return settlement.apply_settlement(self, rec)

    # ---- positions ------------------------------------------------------------------------

    def _position_row(self, account_row: int, instrument: str, sign: int) -> int:
        contract = self.contracts.row(instrument)
        key = (account_row, contract, sign)
        row = self.position_index.get(key)
        if row is None:
            row = self.n_positions
            self.n_positions += 1
            for name in ("pos_account", "pos_contract", "pos_key"):
                setattr(self, name, grow(getattr(self, name), row + 1))
            for name in cols.POSITION_COLUMNS:
                self.pos[name] = grow(self.pos[name], row + 1)
            spec = self.contracts.specs[contract]
            self.pos_account[row] = account_row
            self.pos_contract[row] = contract
            self.pos_key[row] = self._group_key(account_row, contract)
            self.pos["sign"][row] = sign
            self.pos["multiplier"][row] = spec.multiplier
            self.pos["margin_rate"][row] = spec.margin_rate
            self.position_index[key] = row
            self.account_positions[account_row].append(row)
            self.contracts.n_positions[contract] += 1
        self._dirty.append(row)
        return row

    def _group_key(self, account_row: int, contract: int) -> int:
        group = int(self.contracts.group[contract])
        k = self.key_index.get((account_row, group))
        if k is None:
            k = self.n_keys
            self.n_keys += 1
            for name in ("key_account", "key_ex_single", "key_single"):
                setattr(self, name, grow(getattr(self, name), k + 1))
            self.key_account[k] = account_row
            self.key_ex_single[k] = self.contracts.single_side[contract]
            self.key_single[k] = self.key_ex_single[k] & self.single_side[account_row]
            self.key_index[(account_row, group)] = k
            self.account_keys[account_row].append(k)
        return k

    def apply_trade(self, rec: Mapping[str, Any]) -> int:
        """Apply a fill (rules.book.trades: close order per exchange, commission from fees)."""
        return trades.apply_trade(self, rec)

    # ---- prices ---------------------------------------------------------------------------

    def set_prices(
        self,
        instruments: Iterable[str],
        last: np.ndarray,
        upper_limit: np.ndarray | None = None,
        lower_limit: np.ndarray | None = None,
        pre_settlement: np.ndarray | None = None,
    ) -> np.ndarray:
        """Store the latest prices; returns the contract rows stored.

        Every instrument the contract table knows is kept, held or not, so a fill in a new
        contract is marked at the market at once; others are skipped and counted
        (`contracts.skipped_prices`). Any finite price is a price (zero and negative too). A
        previous settlement sent here is an intraday correction: it reprices yesterday's lots
        and never rolls lots into yesterday's — only `apply_settlement` does.
        """
        c = self.contracts
        rows, src = [], []
        for i, name in enumerate(instruments):
            r = c.known_row(name)
            if r is not None:
                rows.append(r)
                src.append(i)
        rows_a = np.asarray(rows, dtype=np.int64)
        if not rows_a.size:
            return rows_a
        src_a = np.asarray(src, dtype=np.int64)
        c.last[rows_a] = last[src_a]
        for name, values in (("upper_limit", upper_limit), ("lower_limit", lower_limit)):
            if values is not None:
                ok = np.isfinite(values[src_a])
                getattr(c, name)[rows_a[ok]] = values[src_a][ok]
        if pre_settlement is not None:
            new = pre_settlement[src_a]
            moved = np.isfinite(new) & ~(new == c.pre_settlement[rows_a])
            if moved.any():
                c.pre_settlement[rows_a[moved]] = new[moved]
                changed = np.zeros(len(c), dtype=bool)
                changed[rows_a[moved]] = True
                self._dirty.extend(
                    np.flatnonzero(changed[self.pos_contract[: self.n_positions]]).tolist()
                )
        return rows_a

    # ---- marking --------------------------------------------------------------------------

    def _refresh_factors(self) -> None:
        marking.refresh_factors(self)

    def _revalue(self, rows: np.ndarray | slice) -> None:
        marking.revalue(self, rows)

    @property
    def figures(self) -> AccountFigures:
        n = self.n_accounts
        for name in FIGURES:
            self._fig[name] = grow(self._fig[name], n)
        return AccountFigures(**{name: self._fig[name][:n] for name in FIGURES})

    def mark(self) -> AccountFigures:
        """Full re-mark: every position and every account at the latest prices."""
        n = self.n_positions
        marking.revalue(self, slice(0, n))
        marking.sum_into_figures(self, np.arange(self.n_accounts), slice(0, n))
        self._marked_positions = n
        self.full_marks += 1
        return self.figures

    def ensure_marked(self) -> AccountFigures:
        """The figures, fully re-marked first if positions were added since the last mark."""
        return self.mark() if self._marked_positions != self.n_positions else self.figures

    def mark_contracts(self, contract_rows: np.ndarray, full_above: float = 0.05) -> np.ndarray:
        """Incremental re-mark after prices of `contract_rows` changed.

        Only positions in those contracts are revalued and only the accounts holding them are
        re-summed; returns those (active) account rows. Contracts nobody holds cost nothing.
        Falls back to a full mark, with the same figures, when more than `full_above` of the
        held contracts moved (measured: past ~5% a full mark is cheaper) or positions were
        added since the last full mark.
        """
        n = self.n_positions
        c = self.contracts
        held_rows = contract_rows[c.n_positions[contract_rows] > 0]
        n_held = int(np.count_nonzero(c.n_positions[: len(c)]))
        if self._marked_positions != n or held_rows.size > full_above * n_held:
            self.mark()
            return np.flatnonzero(self.active[: self.n_accounts])
        pos_rows, holders, their_rows = marking.holdings(self, held_rows)
        if pos_rows.size == 0:
            return pos_rows
        marking.revalue(self, pos_rows)
        marking.sum_into_figures(self, holders, their_rows)
        self.incremental_marks += 1
        return holders[self.active[holders]]

    def mark_accounts(self, acc_rows: np.ndarray) -> None:
        """Re-mark some accounts after their own events (trade, transfer, snapshot, order)."""
        if self._marked_positions != self.n_positions:
            self.mark()
            return
        mask = np.zeros(self.n_accounts, dtype=bool)
        mask[acc_rows] = True
        self._resum(mask, revalue=True)

    def _resum(self, accounts_mask: np.ndarray, revalue: bool = False) -> None:
        pos_rows = np.flatnonzero(accounts_mask[self.pos_account[: self.n_positions]])
        if revalue:
            marking.revalue(self, pos_rows)
        marking.sum_into_figures(self, np.flatnonzero(accounts_mask), pos_rows)

    # ---- views ----------------------------------------------------------------------------

    def positions_of(self, account_id: str) -> list[dict[str, Any]]:
        return views.positions_of(self, self.row_of(account_id))

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
        return views.account_view(self, row)

    def contract_distances(self, row: int) -> list[dict[str, Any]]:
        return views.contract_distances(self, row)

    def unpriced_accounts(self) -> np.ndarray | None:
        return views.unpriced_accounts(self)

    def limit_locked_accounts(self) -> np.ndarray:
        return views.limit_locked_accounts(self)

    def instruments_held(self, account_row: int) -> list[str]:
        return [
            self.contracts.names[int(self.pos_contract[p])]
            for p in self.account_positions[account_row]
            if self.pos["volume"][p] > 0
        ]

    def net_exposure_by_commodity(self) -> dict[str, float]:
        return views.net_exposure_by_commodity(self)

    def state_bytes(self) -> int:
        return views.state_bytes(self)
