"""Accounts and positions files into an AccountBook (the backtest's and the stress test's input).

Columns: accounts `account_id, group_path, pre_balance`; positions `account_id, contract,
direction, volume, cost_price`. A bad row names its file, line and why.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rules.book import AccountBook, BookError
from rules.contracts import UnknownContract


class BacktestInputError(ValueError):
    """A bad input file: names the file, the line and why."""


# ---- accounts and positions ----------------------------------------------------------------


def _rows(path: Path, columns: Sequence[str]) -> Iterable[tuple[int, dict[str, str]]]:
    try:
        fh = open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115
    except FileNotFoundError:
        raise BacktestInputError(f"{path}: file not found") from None
    with fh:
        reader = csv.DictReader(fh)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise BacktestInputError(
                f"{path}: header needs {', '.join(columns)}; missing {missing}"
            )
        for line, row in enumerate(reader, start=2):
            short = [c for c in columns if row.get(c) is None]
            if short:  # a row with fewer cells than the header
                raise BacktestInputError(
                    f"{path}:{line}: missing {', '.join(short)} (the row has fewer columns "
                    "than the header)"
                )
            yield line, row


def _num(value: str, path: Path, line: int, name: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise BacktestInputError(f"{path}:{line}: {name} {value!r} is not a number") from None
    if not np.isfinite(out):
        raise BacktestInputError(f"{path}:{line}: {name} is {out}")
    return out


def build_book(accounts: Path, positions: Path, table: Any) -> AccountBook:
    """An AccountBook of the accounts and their positions (cost = open price, 逐日盯市)."""
    held: dict[str, list[dict[str, Any]]] = {}
    for line, row in _rows(
        positions, ("account_id", "contract", "direction", "volume", "cost_price")
    ):
        direction = row["direction"].strip().lower()
        if direction not in ("long", "short"):
            raise BacktestInputError(
                f"{positions}:{line}: direction must be long or short, got {row['direction']!r}"
            )
        contract = row["contract"].strip()
        try:
            table.spec(contract)
        except (UnknownContract, ValueError) as exc:
            raise BacktestInputError(f"{positions}:{line}: contract {contract!r}: {exc}") from None
        volume = _num(row["volume"], positions, line, "volume")
        if volume < 0:
            raise BacktestInputError(f"{positions}:{line}: volume must not be negative")
        held.setdefault(row["account_id"].strip(), []).append({
            "instrument": contract, "direction": direction, "volume": volume,
            "cost_price": _num(row["cost_price"], positions, line, "cost_price"),
        })  # fmt: skip
    book = AccountBook(table)
    seen: set[str] = set()
    for line, row in _rows(accounts, ("account_id", "group_path", "pre_balance")):
        account = row["account_id"].strip()
        if not account or account in seen:
            raise BacktestInputError(f"{accounts}:{line}: account_id {account!r} empty or repeated")
        seen.add(account)
        snapshot = {
            "account_id": account, "group_path": row["group_path"].strip(),
            "pre_balance": _num(row["pre_balance"], accounts, line, "pre_balance"),
            "positions": held.get(account, []),
        }  # fmt: skip
        try:
            book.apply_snapshot(snapshot)
        except (BookError, UnknownContract, ValueError) as exc:
            raise BacktestInputError(f"{accounts}:{line}: {exc}") from None
    unknown = sorted(set(held) - seen)
    if unknown:
        raise BacktestInputError(
            f"{positions}: positions of accounts not in {accounts.name}: {unknown[:5]}"
        )
    return book


# ---- the command ---------------------------------------------------------------------------
