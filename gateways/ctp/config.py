"""The `[ctp]` config tables, validated on their own (unknown keys with a did-you-mean, errors
naming the dotted key), so the core config needs to know nothing about CTP.

    [ctp]
    flow_dir = "var/ctp"                 # CTP's flow files (one folder per session is made)
    secrets_file = "~/.config/fengkong/ctp.toml"   # outside the repository; optional
    account_bus = true                   # this process owns the account bus (fengkong run)

    [ctp.md]                             # market data: one MdApi, fronts in failover order
    fronts = ["tcp://182.254.243.31:30011"]
    feed = "ctp"                         # the [[market.feeds]] entry whose endpoint it publishes on
    instruments = ["rb2610"]             # plus every instrument the investors hold

    [[ctp.investors]]                    # one trading session each
    name = "simnow"
    fronts = ["tcp://182.254.243.31:30001"]
    broker_id = "9999"
    user_id = "000000"
    app_id = "simnow_client_test"
    password_env = "FENGKONG_CTP_SIMNOW_PASSWORD"   # or `password` in the secrets file's [simnow]
    auth_code_env = "FENGKONG_CTP_SIMNOW_AUTH_CODE" # or `auth_code` there

    [ctp.orders]                         # routing of approved orders: off by default
    enabled = false
    dry_run = true

Passwords and auth codes are never in this file: only the names of the variables (or the
secrets file) that hold them, read when a session logs in (`Credentials`, whose repr hides them).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class CtpConfigError(ValueError):
    """A problem in a [ctp] or [backoffice] table; the message starts with the dotted key."""


@dataclass(frozen=True)
class MdConfig:
    fronts: tuple[str, ...] = ()
    broker_id: str = ""
    user_id: str = ""
    password_env: str = ""  # market-data fronts mostly accept an empty login
    feed: str = "ctp"
    instruments: tuple[str, ...] = ()
    batch_ms: int = 50
    reconnect_after_s: float = 15.0  # disconnected this long: recreate the API on the next front
    backoff_max_s: float = 120.0


@dataclass(frozen=True)
class InvestorConfig:
    name: str
    fronts: tuple[str, ...] = ()
    broker_id: str = ""
    user_id: str = ""
    investor_id: str = ""  # "" = user_id
    app_id: str = ""
    password_env: str = ""
    auth_code_env: str = ""
    group_path: str = ""  # where the account sits in the hierarchy
    query_interval_s: float = 1.05  # CTP allows about one query a second per session
    query_retries: int = 5
    reconcile_s: float = 60.0  # 0: no reconciliation
    equity_tolerance: float = 1.0  # money
    margin_tolerance: float = 1.0
    position_tolerance: float = 0.0  # lots

    @property
    def account_id(self) -> str:
        return self.investor_id or self.user_id


@dataclass(frozen=True)
class OrdersConfig:
    enabled: bool = False
    dry_run: bool = True  # log what would be sent, send nothing
    refs_path: str = (
        ""  # SQLite of order_ref ↔ OrderRef/FrontID/SessionID; "" = flow_dir/order_refs.sqlite
    )
    endpoint: str = ""  # "" = the [orders] endpoints the Executor pushes to
    reports_endpoint: str = ""


@dataclass(frozen=True)
class CtpConfig:
    flow_dir: str = "var/ctp"
    secrets_file: str = ""
    account_bus: bool = True
    md: MdConfig | None = None
    investors: tuple[InvestorConfig, ...] = ()
    orders: OrdersConfig = OrdersConfig()


def fail(path: str, why: str) -> typing.NoReturn:
    raise CtpConfigError(f"{path}: {why}")


def _coerce(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", typing.Union)):
        inner = next(a for a in args if a is not type(None))
        return None if value is None else _coerce(inner, value, path)
    if origin is tuple:
        if not isinstance(value, list):
            fail(path, f"expected a list, got {type(value).__name__}")
        return tuple(_coerce(args[0], v, f"{path}[{i}]") for i, v in enumerate(value))
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            fail(path, f"expected a table, got {type(value).__name__}")
        return build(tp, value, path)
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if tp in (bool, str) and isinstance(value, tp):
        return value
    fail(path, f"expected {getattr(tp, '__name__', tp)}, got {value!r}")


def build(cls: type, data: dict[str, Any], path: str) -> Any:
    """A frozen dataclass from a TOML table; unknown keys get a did-you-mean."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in names:
            hint = difflib.get_close_matches(key, names, n=1)
            fail(f"{path}.{key}", "unknown key" + (f" (did you mean '{hint[0]}'?)" if hint else ""))
        kwargs[key] = _coerce(hints[key], value, f"{path}.{key}")
    for f in dataclasses.fields(cls):
        missing = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if missing and f.name not in kwargs:
            fail(f"{path}.{f.name}", "missing")
    return cls(**kwargs)


def _fronts(fronts: tuple[str, ...], path: str) -> None:
    if not fronts:
        fail(path, "at least one front (tcp://host:port) is needed")
    for i, front in enumerate(fronts):
        if not front.startswith(("tcp://", "ssl://", "socks5://")):
            fail(f"{path}[{i}]", f"{front!r} is not tcp://host:port")


def parse(data: dict[str, Any], feeds: tuple[str, ...] = ()) -> CtpConfig:
    """Validate the raw [ctp] table; `feeds` are the configured market feed names."""
    if not isinstance(data, dict):
        fail("ctp", "expected a table")
    cfg: CtpConfig = build(CtpConfig, data, "ctp")
    # relative to where the config is loaded, not to wherever a Ray worker happens to run
    cfg = dataclasses.replace(cfg, flow_dir=str(Path(cfg.flow_dir).expanduser().resolve()))
    if cfg.md is not None:
        _fronts(cfg.md.fronts, "ctp.md.fronts")
        if feeds and cfg.md.feed not in feeds:
            fail("ctp.md.feed", f"no [[market.feeds]] named {cfg.md.feed!r} (have {list(feeds)})")
        if cfg.md.batch_ms < 1:
            fail("ctp.md.batch_ms", "must be at least 1")
    names = [i.name for i in cfg.investors]
    if len(set(names)) != len(names):
        fail("ctp.investors", f"names must be unique, got {names}")
    for k, inv in enumerate(cfg.investors):
        where = f"ctp.investors[{k}] ({inv.name})"
        _fronts(inv.fronts, f"{where}.fronts")
        for key in ("broker_id", "user_id"):
            if not getattr(inv, key):
                fail(f"{where}.{key}", "missing")
        if inv.query_interval_s < 1.0:
            fail(f"{where}.query_interval_s", "CTP allows about one query a second: at least 1.0")
        for key in ("equity_tolerance", "margin_tolerance", "position_tolerance", "reconcile_s"):
            if getattr(inv, key) < 0:
                fail(f"{where}.{key}", "must not be negative")
    accounts = [i.account_id for i in cfg.investors]
    if len(set(accounts)) != len(accounts):
        fail("ctp.investors", f"one session per investor: {accounts} repeats an investor")
    if cfg.orders.enabled and not cfg.investors:
        fail("ctp.orders.enabled", "order routing needs at least one [[ctp.investors]] session")
    return cfg


@dataclass(frozen=True, repr=False)
class Credentials:
    """A session's password and auth code, read at login; never printed, logged or journaled."""

    password: str = field(default="")
    auth_code: str = field(default="")

    def __repr__(self) -> str:
        return "Credentials(***)"


def credentials(
    inv: InvestorConfig | MdConfig, secrets_file: str = "", name: str = "md"
) -> Credentials:
    """Environment variables first, then the secrets file's table named after the session."""
    table: dict[str, Any] = {}
    if secrets_file:
        path = Path(secrets_file).expanduser()
        try:
            table = tomllib.loads(path.read_text(encoding="utf-8")).get(name, {})
        except FileNotFoundError:
            raise CtpConfigError(f"ctp.secrets_file: {path} not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise CtpConfigError(f"ctp.secrets_file: {path} is not valid TOML: {exc}") from None
    password = os.environ.get(inv.password_env, "") if inv.password_env else ""
    auth_env = getattr(inv, "auth_code_env", "")
    auth = os.environ.get(auth_env, "") if auth_env else ""
    return Credentials(
        password or str(table.get("password", "")), auth or str(table.get("auth_code", ""))
    )


def validate_table(table: dict[str, Any], cfg: Any) -> CtpConfig:
    """The config loader's hook (`infra.config.EDGE_VALIDATORS["ctp"]`)."""
    return parse(table, tuple(f.name for f in cfg.market.feeds))


def register() -> None:
    """Let the config loader validate [ctp] here (called by the application layer)."""
    from infra.config import EDGE_VALIDATORS

    EDGE_VALIDATORS["ctp"] = validate_table
