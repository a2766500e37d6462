"""Read a settlement system's daily exports into account bus records (see docs/backoffice.md).

Three kinds of CSV, told apart by their header (or a name starting accounts / positions /
fund_flows, 资金 / 持仓 / 出入金):

- accounts    one row per account: account_id, pre_balance, deposit, withdraw (or a net
              transfer), close_profit, commission, frozen_margin, frozen_commission, group_path;
              informational: equity, margin, position_profit (fengkong marks them itself)
- positions   one row per account, contract and side: account_id, instrument, direction,
              volume, today_volume, cost_price
- fund_flows  one row per transfer: account_id, kind (deposit / withdraw), amount, ts

Columns are found by name, English or the common settlement-bill (结算单) names (客户号,
上日结存, 当日存取合计, 平仓盈亏, 持仓盈亏, 手续费, 保证金占用, ...: `ALIASES`). An accounts file
and the positions files loaded with it become one `snapshot` per account (positions of the
same account attached; a snapshot replaces everything known about the account); fund flows
become `deposit` / `withdraw` records. Files are UTF-8 (with or without BOM) or GB18030, as
Chinese back offices write them.

A bad row is named by file, line and reason in `LoadResult.problems` and skipped; the rest
load. A positions row for an account the accounts file does not have is a problem too.
"""

from __future__ import annotations

import csv
import io
import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

BEIJING = timezone(timedelta(hours=8))
ALIASES: dict[str, tuple[str, ...]] = {
    "account_id": ("客户号", "资金账号", "投资者代码", "账号", "客户代码", "investor_id"),
    "group_path": ("组织", "组织架构", "group"),
    "pre_balance": ("上日结存", "期初结存", "上日权益"),
    "deposit": ("当日入金", "入金"),
    "withdraw": ("当日出金", "出金"),
    "net_transfer": ("当日存取合计", "出入金合计", "存取合计"),
    "close_profit": ("平仓盈亏", "平仓盈亏(逐日)", "当日平仓盈亏"),
    "position_profit": ("持仓盈亏", "浮动盈亏", "持仓盯市盈亏"),
    "commission": ("手续费", "当日手续费"),
    "margin": ("保证金占用", "占用保证金", "持仓保证金"),
    "frozen_margin": ("冻结保证金",),
    "frozen_commission": ("冻结手续费",),
    "equity": ("客户权益", "当日结存", "动态权益"),
    "instrument": ("合约", "合约代码", "品种合约"),
    "direction": ("买卖", "方向", "多空", "买/卖"),
    "volume": ("持仓量", "持仓", "手数", "总持仓"),
    "today_volume": ("今仓", "今持仓", "今日持仓"),
    "cost_price": ("持仓均价", "开仓均价", "开仓价", "昨结算"),
    "kind": ("类型", "出入金类型", "摘要"),
    "amount": ("金额", "发生金额"),
    "ts": ("时间", "发生时间", "日期"),
}
KIND_COLUMNS = {
    "positions": {"instrument", "direction", "volume"},
    "fund_flows": {"amount"},
    "accounts": {"pre_balance"},
}
NAME_HINTS = {"accounts": ("accounts", "资金"), "positions": ("positions", "持仓"),
              "fund_flows": ("fund_flows", "出入金", "transfers")}  # fmt: skip
LONG = {"long", "buy", "b", "多", "买", "多头", "0"}
SHORT = {"short", "sell", "s", "空", "卖", "空头", "1"}
DEPOSIT = {"deposit", "in", "入金", "银行转期货", "银期转账入"}
WITHDRAW = {"withdraw", "out", "出金", "期货转银行", "银期转账出"}


class BadRow(ValueError):
    pass


@dataclass
class LoadResult:
    records: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)  # per kind, rows loaded

    def merge(self, other: LoadResult) -> None:
        self.records += other.records
        self.problems += other.problems
        for k, v in other.rows.items():
            self.rows[k] = self.rows.get(k, 0) + v


def read_text(path: Path) -> str:
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ValueError(f"{path.name}: neither UTF-8 nor GB18030")


def canonical(header: list[str]) -> dict[str, int]:
    """Column index by canonical name (first match wins; unknown columns are ignored)."""
    lookup = {name: name for name in ALIASES}
    for name, aliases in ALIASES.items():
        for alias in aliases:
            lookup[alias] = name
    out: dict[str, int] = {}
    for i, col in enumerate(header):
        name = lookup.get(col.strip()) or lookup.get(col.strip().lower())
        if name and name not in out:
            out[name] = i
    return out


def kind_of(path: Path, cols: dict[str, int]) -> str:
    for kind, hints in NAME_HINTS.items():
        if any(path.name.lower().startswith(h) for h in hints):
            return kind
    for kind, needed in KIND_COLUMNS.items():
        if needed <= set(cols):
            return kind
    raise ValueError(f"{path.name}: header names no known columns (see docs/backoffice.md)")


def _number(
    fields: list[str], cols: dict[str, int], name: str, default: float | None = 0.0
) -> float:
    i = cols.get(name)
    text = fields[i].strip().replace(",", "") if i is not None and i < len(fields) else ""
    if text in ("", "-", "--"):
        if default is None:
            raise BadRow(f"{name} missing")
        return default
    try:
        value = float(text)
    except ValueError:
        raise BadRow(f"{name} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise BadRow(f"{name} {text!r} is not finite")
    return value


def _text(fields: list[str], cols: dict[str, int], name: str, required: bool = True) -> str:
    i = cols.get(name)
    text = fields[i].strip() if i is not None and i < len(fields) else ""
    if required and not text:
        raise BadRow(f"{name} missing")
    return text


def _ts(text: str) -> float:
    if not text:
        return time.time()
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y%m%d %H:%M:%S", "%Y-%m-%d", "%Y%m%d"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=BEIJING).timestamp()
        except ValueError:
            continue
    raise BadRow(f"ts {text!r} is not YYYY-MM-DD[ HH:MM:SS]")


def _account_row(f: list[str], cols: dict[str, int]) -> dict[str, Any]:
    rec: dict[str, Any] = {"account_id": _text(f, cols, "account_id"),
                           "group_path": _text(f, cols, "group_path", required=False),
                           "pre_balance": _number(f, cols, "pre_balance", None)}  # fmt: skip
    deposit, withdraw = _number(f, cols, "deposit"), _number(f, cols, "withdraw")
    if "net_transfer" in cols and "deposit" not in cols and "withdraw" not in cols:
        net = _number(f, cols, "net_transfer")
        deposit, withdraw = max(net, 0.0), max(-net, 0.0)
    if deposit < 0 or withdraw < 0:
        raise BadRow("deposit and withdraw must not be negative")
    rec.update(deposit=deposit, withdraw=withdraw)
    for name in ("close_profit", "commission", "frozen_margin", "frozen_commission"):
        rec[name] = _number(f, cols, name)
    for name in ("equity", "margin", "position_profit"):  # the back office's own figures
        if name in cols:
            rec[f"backoffice_{name}"] = _number(f, cols, name)
    return rec


def _position_row(f: list[str], cols: dict[str, int]) -> tuple[str, dict[str, Any]]:
    side = _text(f, cols, "direction").lower()
    direction = "long" if side in LONG else "short" if side in SHORT else None
    if direction is None:
        raise BadRow(f"direction {side!r} is not long/short (多/空, 买/卖)")
    volume = _number(f, cols, "volume", None)
    today = _number(f, cols, "today_volume")
    if volume < 0 or not 0 <= today <= volume:
        raise BadRow(f"volume {volume:g} / today_volume {today:g} not valid")
    return _text(f, cols, "account_id"), {
        "instrument": _text(f, cols, "instrument"), "direction": direction, "volume": volume,
        "today_volume": today, "cost_price": _number(f, cols, "cost_price", None),
    }  # fmt: skip


def _flow_row(f: list[str], cols: dict[str, int]) -> dict[str, Any]:
    amount = _number(f, cols, "amount", None)
    kind = _text(f, cols, "kind", required=False).lower()
    if kind in DEPOSIT or (not kind and amount > 0):
        rtype = "deposit"
    elif kind in WITHDRAW or (not kind and amount < 0):
        rtype = "withdraw"
    else:
        raise BadRow(f"kind {kind!r} is neither deposit (入金) nor withdraw (出金)")
    if amount == 0:
        raise BadRow("amount is 0")
    return {"type": rtype, "account_id": _text(f, cols, "account_id"), "amount": abs(amount),
            "ts": _ts(_text(f, cols, "ts", required=False))}  # fmt: skip


def load_files(paths: list[Path]) -> LoadResult:
    """Read every file; accounts and positions of the same call become snapshots."""
    result = LoadResult()
    accounts: dict[str, dict[str, Any]] = {}
    positions: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for path in paths:
        try:
            rows = list(csv.reader(io.StringIO(read_text(path))))
            if not rows:
                raise ValueError(f"{path.name}: empty file")
            cols = canonical(rows[0])
            kind = kind_of(path, cols)
        except (OSError, ValueError) as exc:
            result.problems.append(str(exc) if path.name in str(exc) else f"{path.name}: {exc}")
            continue
        for line, fields in enumerate(rows[1:], start=2):
            if not any(x.strip() for x in fields):
                continue
            try:
                if kind == "accounts":
                    rec = _account_row(fields, cols)
                    if rec["account_id"] in accounts:
                        raise BadRow(f"account {rec['account_id']} appears twice")
                    accounts[rec["account_id"]] = rec
                elif kind == "positions":
                    account_id, pos = _position_row(fields, cols)
                    positions.setdefault(account_id, []).append((f"{path.name}:{line}", pos))
                else:
                    result.records.append(_flow_row(fields, cols))
                result.rows[kind] = result.rows.get(kind, 0) + 1
            except BadRow as exc:
                result.problems.append(f"{path.name}:{line}: {exc}")
    for account_id, held in positions.items():
        if account_id not in accounts:
            for where, _ in held:
                result.problems.append(
                    f"{where}: account {account_id} is in no accounts file loaded with it"
                )
            result.rows["positions"] -= len(held)
    for account_id, rec in accounts.items():
        snap = {
            "type": "snapshot",
            **rec,
            "positions": [p for _, p in positions.get(account_id, [])],
        }
        result.records.append(snap)
    # snapshots first: a transfer of the same day applies on top of its account's snapshot
    result.records.sort(key=lambda r: r["type"] != "snapshot")
    return result


def expand(targets: list[str | Path]) -> list[Path]:
    """Files named, and the CSV files of folders named, in name order."""
    out: list[Path] = []
    for target in map(Path, targets):
        if target.is_dir():
            out += sorted(p for p in target.iterdir() if p.suffix.lower() == ".csv" and p.is_file())
        else:
            out.append(target)
    return out
