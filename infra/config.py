"""One TOML config file, validated once at load into frozen, typed objects.

An error names the file, the dotted key and why (unknown key, wrong type, bad value), so a broken
config fails at start-up and never half-way through a trading day. Secrets are never in here:
channels name the environment variables that hold them.
"""

from __future__ import annotations

import dataclasses
import difflib
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class ConfigError(ValueError):
    """A config problem, with the dotted key that caused it."""


@dataclass(frozen=True)
class ClusterConfig:
    address: str = ""  # "" starts a local Ray; "auto" or "ray://host:10001" joins a cluster
    namespace: str = "fengkong"
    dashboard_host: str = "127.0.0.1"
    dashboard_port: int = 8265


@dataclass(frozen=True)
class FeedConfig:
    name: str = "sim"
    endpoint: str = "tcp://127.0.0.1:17701"


@dataclass(frozen=True)
class MarketConfig:
    flush_ms: int = 20  # the most a price waits before shards see it (coalescing window)
    feeds: tuple[FeedConfig, ...] = (FeedConfig(),)


@dataclass(frozen=True)
class AccountsConfig:
    shards: int = 2
    endpoint: str = "tcp://127.0.0.1:17711"  # account bus PUB (live events)
    snapshot_endpoint: str = "tcp://127.0.0.1:17712"  # account bus ROUTER (replay from seq)
    inbound_endpoint: str = "tcp://127.0.0.1:17713"  # account bus PULL (sources, fills)
    margin_markup: float = 0.0  # broker's markup over the exchange margin rate
    flush_ms: int = 100  # how often shards send events and exposures on


@dataclass(frozen=True)
class OrdersConfig:
    endpoint: str = "tcp://127.0.0.1:17721"  # order gateway PULL
    reports_endpoint: str = "tcp://127.0.0.1:17722"  # order gateway PUB (order status, fills)


@dataclass(frozen=True)
class BooksConfig:
    commodities: tuple[str, ...] = ()  # empty: one book per commodity of the simulated universe


@dataclass(frozen=True)
class AuditConfig:
    path: str = "var/journal.sqlite"
    batch_ms: int = 100


@dataclass(frozen=True)
class NotifierConfig:
    max_attempts: int = 5
    base_delay_s: float = 0.2
    max_delay_s: float = 5.0
    workers: int = 8


@dataclass(frozen=True)
class RuleConfig:
    id: str
    metric: str = "risk_degree"
    op: str = ">"
    threshold: float = 0.8
    rearm: float = 0.75
    severity: str = "warning"
    description: str = ""
    action: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChannelConfig:
    name: str
    type: str
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SinkConfig:
    """The local provider sink (Twilio + WeCom wire formats) that `make run` starts."""

    enabled: bool = True
    port: int = 18790
    twilio_account_sid: str = "AC" + "0" * 32
    twilio_auth_token: str = "local-sink-token"
    wecom_key: str = "local-sink-key"


@dataclass(frozen=True)
class SimConfig:
    accounts: int = 10_000
    contracts: int = 60
    positions_per_account: int = 3
    ticks_per_contract_hz: float = 4.0
    shock_at_s: float = 20.0
    shock_products: tuple[str, ...] = ("rb", "hc", "i", "j", "jm")
    shock_pct: float = -0.05
    duration_s: float = 60.0
    auto_approve_as: str = "demo-risk-desk"  # "" leaves proposals pending for the CLI
    seed: int = 7


@dataclass(frozen=True)
class Config:
    cluster: ClusterConfig = ClusterConfig()
    market: MarketConfig = MarketConfig()
    accounts: AccountsConfig = AccountsConfig()
    orders: OrdersConfig = OrdersConfig()
    books: BooksConfig = BooksConfig()
    audit: AuditConfig = AuditConfig()
    notifier: NotifierConfig = NotifierConfig()
    rules: tuple[RuleConfig, ...] = (
        RuleConfig(
            id="account.risk_degree.warn",
            description="risk degree above 80%",
            action={"kind": "reduce", "target": 0.7},
        ),
    )
    channels: tuple[ChannelConfig, ...] = ()
    sink: SinkConfig = SinkConfig()
    sim: SimConfig = SimConfig()
    contracts_overrides: tuple[str, ...] = ()
    source: str = "<defaults>"


CHANNEL_TYPES = ("wecom", "twilio_sms")
SEVERITIES = ("info", "warning", "critical", "emergency")


def _fail(path: str, why: str) -> typing.NoReturn:
    raise ConfigError(f"{path}: {why}")


def _coerce(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if origin is tuple:
        (item_tp, _ellipsis) = typing.get_args(tp)
        if not isinstance(value, list):
            _fail(path, f"expected a list, got {type(value).__name__}")
        return tuple(_coerce(item_tp, v, f"{path}[{i}]") for i, v in enumerate(value))
    if origin in (dict,) or tp is dict:
        if not isinstance(value, dict):
            _fail(path, f"expected a table, got {type(value).__name__}")
        return dict(value)
    if origin in (typing.Union, types.UnionType):
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            _fail(path, f"expected a table, got {type(value).__name__}")
        return _build(tp, value, path)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            _fail(path, f"expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            _fail(path, f"expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            _fail(path, f"expected true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            _fail(path, f"expected a string, got {value!r}")
        return value
    return value


def _build(cls: type, data: dict[str, Any], path: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs: dict[str, Any] = {}
    if cls is ChannelConfig:
        # A channel is its name and type plus provider-specific settings.
        for key in ("name", "type"):
            if key not in data:
                _fail(f"{path}.{key}", "missing")
        return ChannelConfig(
            name=_coerce(str, data["name"], f"{path}.name"),
            type=_coerce(str, data["type"], f"{path}.type"),
            settings={k: v for k, v in data.items() if k not in ("name", "type")},
        )
    for key, value in data.items():
        if key not in names:
            hint = difflib.get_close_matches(key, names, n=1)
            suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
            _fail(f"{path}.{key}".lstrip("."), f"unknown key{suggestion}")
        kwargs[key] = _coerce(hints[key], value, f"{path}.{key}".lstrip("."))
    for f in dataclasses.fields(cls):
        if (
            f.name not in kwargs
            and f.default is dataclasses.MISSING
            and (f.default_factory is dataclasses.MISSING)
        ):
            _fail(f"{path}.{f.name}".lstrip("."), "missing")
    return cls(**kwargs)


def _validate(cfg: Config) -> None:
    if cfg.accounts.shards < 1:
        _fail("accounts.shards", "must be at least 1")
    if cfg.market.flush_ms < 1:
        _fail("market.flush_ms", "must be at least 1 ms")
    if not cfg.market.feeds:
        _fail("market.feeds", "at least one feed is needed")
    names = [f.name for f in cfg.market.feeds]
    if len(set(names)) != len(names):
        _fail("market.feeds", f"feed names must be unique, got {names}")
    for i, rule in enumerate(cfg.rules):
        where = f"rules[{i}] ({rule.id})"
        if rule.severity not in SEVERITIES:
            _fail(f"{where}.severity", f"must be one of {SEVERITIES}")
        if rule.op not in (">", ">=", "<", "<="):
            _fail(f"{where}.op", "must be one of >, >=, <, <=")
        above = rule.op.startswith(">")
        if (above and rule.rearm > rule.threshold) or (not above and rule.rearm < rule.threshold):
            _fail(f"{where}.rearm", f"must be on the safe side of threshold {rule.threshold}")
        kind = rule.action.get("kind") if rule.action else None
        if kind is not None and kind not in ("reduce", "liquidate", "margin_call", "freeze"):
            _fail(f"{where}.action.kind", "must be reduce, liquidate, margin_call or freeze")
    ids = [r.id for r in cfg.rules]
    if len(set(ids)) != len(ids):
        _fail("rules", "rule ids must be unique")
    for i, ch in enumerate(cfg.channels):
        if ch.type not in CHANNEL_TYPES:
            _fail(f"channels[{i}] ({ch.name}).type", f"must be one of {CHANNEL_TYPES}")
    if cfg.sim.accounts < 1:
        _fail("sim.accounts", "must be at least 1")


def from_dict(data: dict[str, Any], source: str = "<dict>") -> Config:
    try:
        cfg = _build(Config, {**data, "source": source}, "")
        _validate(cfg)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return cfg


def load(path: str | Path) -> Config:
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{p}: file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    return from_dict(data, source=str(p))


def default() -> Config:
    """The embedded default that `make run` uses: local Ray, simulated market and accounts."""
    return from_dict({}, source="<embedded default>")
