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

from infra.console_config import ConsoleConfig, PersonConfig
from rules.access import valid_role
from rules.book import AccountPolicy

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
    role: str = "primary"  # "primary", or "backup" standing in for the feed named in `primary`
    primary: str = ""


@dataclass(frozen=True)
class MarketStatsConfig:
    """Windows of the per-contract statistics (see rules.market_stats.StatsParams)."""

    vol_windows_s: tuple[int, ...] = (60, 300, 1800)
    buckets: int = 30
    bar_s: int = 60
    bar_history: int = 240
    jump_window_s: int = 5
    jump_baseline_s: int = 300
    jump_min_move: float = 0.003
    jump_min_returns: int = 20
    spike_window_s: int = 60
    spike_baseline_s: int = 1800
    spike_min_history_s: int = 300
    lock_s: float = 3.0

    def __post_init__(self) -> None:
        from rules.market_stats import StatsParams

        try:
            StatsParams(**dataclasses.asdict(self))
        except ValueError as exc:
            raise ConfigError(f"market.stats: {exc}") from None


@dataclass(frozen=True)
class MarketRuleConfig:
    """A market rule (see rules.market_rules for kinds and metrics)."""

    id: str
    kind: str = "jump"
    threshold: float = 6.0
    rearm: float = 3.0
    severity: str = "warning"
    sessions: tuple[str, ...] = ()
    products: tuple[str, ...] = ()
    window_s: int = 0
    description: str = ""

    def __post_init__(self) -> None:
        from rules.market_rules import MarketRule

        try:
            MarketRule(**dataclasses.asdict(self))
        except ValueError as exc:
            raise ConfigError(f"market.rules ({self.id}): {exc}") from None


DEFAULT_MARKET_RULES: tuple[MarketRuleConfig, ...] = (
    MarketRuleConfig("market.jump", "jump", 6.0, 3.0, "warning", ("night", "day"),
                     description="move over 5 s beyond 6 standard deviations"),
    MarketRuleConfig("market.near_limit", "near_limit", 0.01, 0.015, "warning",
                     description="within 1% of the limit price"),
    MarketRuleConfig("market.limit_locked", "limit_locked", 0.5, 0.5, "critical",
                     description="locked at the limit: positions cannot be traded out"),
    MarketRuleConfig("market.volume_spike", "volume_spike", 8.0, 2.0, "info", ("night", "day"),
                     description="1-min volume above 8x the 30-min rate"),
    MarketRuleConfig("market.oi_spike", "oi_spike", 8.0, 2.0, "info", ("night", "day"),
                     description="1-min open-interest change above 8x the 30-min rate"),
    MarketRuleConfig("market.volatility.5m", "volatility", 1.0, 0.7, "warning", ("night", "day"),
                     window_s=300, description="5-min realized volatility above 100% a year"),
    MarketRuleConfig("market.stale", "stale", 30.0, 5.0, "warning",
                     description="a live contract without ticks for 30 s in its session"),
    MarketRuleConfig("market.feed_silent", "feed_silent", 10.0, 2.0, "critical",
                     description="the whole feed without ticks for 10 s in session"),
)  # fmt: skip


def _check_market(m: MarketConfig) -> None:
    """Feed roles (a backup names an existing primary, one backup each) and market knobs."""
    primaries = {f.name for f in m.feeds if f.role == "primary"}
    backed: set[str] = set()
    for i, f in enumerate(m.feeds):
        where = f"market.feeds[{i}] ({f.name})"
        if f.role not in ("primary", "backup"):
            raise ConfigError(f"{where}.role: must be primary or backup, got {f.role!r}")
        if f.role == "primary" and f.primary:
            raise ConfigError(f"{where}.primary: only a backup names a primary")
        if f.role == "backup":
            if f.primary not in primaries:
                raise ConfigError(f"{where}.primary: no primary feed named {f.primary!r}")
            if f.primary in backed:
                raise ConfigError(f"{where}.primary: {f.primary!r} already has a backup")
            backed.add(f.primary)
    for key, value in m.stale_s_by_product.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ConfigError(f"market.stale_s_by_product.{key}: must be a positive number")
    if m.check_ms < 1 or m.takeover_s <= 0:
        raise ConfigError("market.check_ms and market.takeover_s must be positive")
    if m.session_clock_start:
        from datetime import datetime

        try:
            datetime.fromisoformat(m.session_clock_start)
        except ValueError:
            raise ConfigError(
                "market.session_clock_start: not an ISO time like 2026-01-05T10:00:00+08:00"
            ) from None


@dataclass(frozen=True)
class MarketConfig:
    flush_ms: int = 20  # the most a price waits before shards see it (coalescing window)
    feeds: tuple[FeedConfig, ...] = (FeedConfig(),)
    stats: MarketStatsConfig = MarketStatsConfig()
    rules: tuple[MarketRuleConfig, ...] = DEFAULT_MARKET_RULES
    stale_s_by_product: dict[str, float] = field(default_factory=dict)  # "rb" or "rb2605"
    check_ms: int = 500  # stale / silence / takeover checks
    takeover_s: float = 3.0  # a backup takes a contract over after the primary is this stale
    holidays_file: str = ""  # exchange holidays (wtpy holidays.json format or one per line)
    session_clock_start: str = ""  # "" wall clock; else ISO time the session clock starts at

    def __post_init__(self) -> None:
        _check_market(self)


@dataclass(frozen=True)
class AccountsConfig:
    shards: int = 2
    endpoint: str = "tcp://127.0.0.1:17711"  # account bus PUB (live events)
    snapshot_endpoint: str = "tcp://127.0.0.1:17712"  # account bus ROUTER (replay from seq)
    inbound_endpoint: str = "tcp://127.0.0.1:17713"  # account bus PULL (sources, fills)
    margin_markup: float = 0.0  # broker's markup over the exchange margin rate
    flush_ms: int = 100  # how often shards send events and exposures on
    # How account groups are marked, first match wins: {match = "grpA/*", cost = "by_date" |
    # "by_trade", margin_price = "pre_settlement" | "last" | "average" | "open", markup = 0.02}
    policies: tuple[dict[str, Any], ...] = ()
    fund_flow: FundFlowConfig = field(default_factory=lambda: FundFlowConfig())


@dataclass(frozen=True)
class FundFlowConfig:
    k: float = 2.0  # a day's outflow above k × the mean of the last `days` days fires
    days: int = 20
    min_days: int = 5
    single_limit: float = 5_000_000.0  # a single transfer above this fires
    severity: str = "warning"


@dataclass(frozen=True)
class OrdersConfig:
    endpoint: str = "tcp://127.0.0.1:17721"  # order gateway PULL
    reports_endpoint: str = "tcp://127.0.0.1:17722"  # order gateway PUB (order status, fills)
    reprice_after_s: float = 5.0  # an order still working after this is cancelled and re-priced
    max_reprices: int = 3  # then it is cancelled for good and the action verified as it stands
    verify_timeout_s: float = 10.0  # after the last fill, how long the account may take to show it
    query_after_s: float = 2.0  # no report for this long: ask the gateway for the order's status
    mark_interval_s: float = 5.0  # journal figures and prices of accounts with open proposals


@dataclass(frozen=True)
class ExposureLimitConfig:
    """An exposure limit as a rule over a book metric (see rules.exposure.LIMIT_METRICS)."""

    id: str
    metric: str = "abs_net_units"
    op: str = ">"
    threshold: float = 0.0
    rearm: float = 0.0
    severity: str = "warning"
    commodities: tuple[str, ...] = ()  # empty: every book
    scope: str = "commodity"  # "commodity" or "business_unit" (each unit of the book)
    description: str = ""

    def __post_init__(self) -> None:
        from rules.exposure import LIMIT_METRICS, LIMIT_SCOPES
        from rules.threshold import ThresholdRule

        where = f"books.limits ({self.id})"
        if self.metric not in LIMIT_METRICS:
            raise ConfigError(f"{where}.metric: must be one of {LIMIT_METRICS}")
        if self.scope not in LIMIT_SCOPES:
            raise ConfigError(f"{where}.scope: must be one of {LIMIT_SCOPES}")
        if self.severity not in ("info", "warning", "critical", "emergency"):
            raise ConfigError(f"{where}.severity: must be info, warning, critical or emergency")
        try:
            ThresholdRule(self.id, self.metric, self.op, self.threshold, self.rearm)
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None


@dataclass(frozen=True)
class BooksConfig:
    commodities: tuple[str, ...] = ()  # empty: one book per commodity of the simulated universe
    inputs_dir: str = ""  # watched folder of inventory / contract / spot files (CSV, JSON)
    inputs_endpoint: str = ""  # ZeroMQ PUB of book records, topic "B.<commodity>|"
    scan_s: float = 2.0
    eval_s: float = 1.0
    snapshot_s: float = 60.0  # journal an operating snapshot this often (for reports)
    var_window: int = 250  # daily returns in the VaR window
    var_min_obs: int = 20
    price_tolerance: float = 0.05  # a contract priced further than this from the market
    counterparty_limits: dict[str, float] = field(default_factory=dict)
    default_counterparty_limit: float = 0.0  # 0: no limit for counterparties not listed
    main_contracts: dict[str, str] = field(default_factory=dict)  # else the highest OI
    limits: tuple[ExposureLimitConfig, ...] = ()


@dataclass(frozen=True)
class AuditConfig:
    path: str = "var/journal.sqlite"
    batch_ms: int = 100
    archive_dir: str = "var/archive"  # `fengkong audit archive` writes one file per day here
    archive_key_env: str = "FENGKONG_ARCHIVE_KEY"  # 32-byte key (hex/base64): AES-256-GCM when set


@dataclass(frozen=True)
class ContactConfig:
    """One person of a roster: the address each kind of channel reaches them at."""

    name: str
    phone: str = ""  # E.164, for SMS and voice
    email: str = ""
    wecom: str = ""  # mobile to @mention in the WeCom group (default: phone without +86)


@dataclass(frozen=True)
class RosterConfig:
    name: str
    members: tuple[ContactConfig, ...] = ()
    rotation_s: float = 0.0  # > 0: one member on call at a time, in turn
    rotation_start: float = 0.0  # epoch seconds the rotation counts from


@dataclass(frozen=True)
class StepConfig:
    channel: str
    after_s: float = 0.0  # from the start of its level


@dataclass(frozen=True)
class LevelConfig:
    roster: str
    steps: tuple[StepConfig, ...] = ()
    after_s: float = -1.0  # from the page's start; < 0: level index × chain.level_after_s


@dataclass(frozen=True)
class ChainConfig:
    """An escalation chain: levels (risk desk → business head → executive), each a roster
    and its channel steps, e.g. WeCom at 0 s, SMS at 60 s, voice at 180 s."""

    name: str
    levels: tuple[LevelConfig, ...] = ()
    level_after_s: float = 300.0


@dataclass(frozen=True)
class RouteConfig:
    """First match wins; empty lists match all. keys/groups are shell patterns."""

    chain: str
    min_severity: str = "info"
    dimensions: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class OperatorConfig:
    """The operator HTTP endpoint (acks, reply links, Twilio callbacks, alert list)."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 0  # 0: any free port (tests); fix it in production so callbacks survive restarts
    token_env: str = "FENGKONG_OPERATOR_TOKEN"
    token: str = ""  # literal only for a loopback host
    public_url: str = ""  # what providers call back, when behind a proxy
    link_ttl_s: float = 86_400.0


@dataclass(frozen=True)
class NotifierConfig:
    max_attempts: int = 5
    base_delay_s: float = 0.2
    max_delay_s: float = 5.0
    workers: int = 8
    group_over: int = 5  # more alerts of one rule within group_wait_s become one digest
    group_wait_s: float = 0.5
    queue_limit: int = 10_000  # per channel; beyond it notifications wait in the journal only
    breaker_failures: int = 5
    breaker_cooldown_s: float = 10.0
    coalesce_max: int = 40  # notifications per message on a rate-limited channel (WeCom)
    resume_window_s: float = 86_400.0  # how far back a restart looks for what it still owes
    rosters: tuple[RosterConfig, ...] = ()
    chains: tuple[ChainConfig, ...] = ()
    routes: tuple[RouteConfig, ...] = ()
    operator: OperatorConfig = OperatorConfig()


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
    scope: str = "account"  # account, group, subsidiary, unit or strategy (roll-up nodes)


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
    duration_s: float = 50.0
    auto_approve_as: str = "demo-risk-desk"  # "" leaves proposals pending for the CLI
    seed: int = 7


@dataclass(frozen=True)
class ApprovalUserConfig:
    """A person who may decide; `secret_env` names the variable holding their signing secret."""

    name: str
    roles: tuple[str, ...] = ()
    secret_env: str = ""


@dataclass(frozen=True)
class ApprovalStageConfig:
    name: str
    roles: tuple[str, ...] = ("risk_desk",)
    approvers: int = 1  # distinct people needed (2: four eyes within the stage)
    time_limit_s: float = 0.0  # 0: none; past it the stage is escalated through the notifier


@dataclass(frozen=True)
class ApprovalPolicyConfig:
    """Stages of one action kind from `min_size` up (size: plan notional or margin-call amount)."""

    kind: str
    min_size: float = 0.0
    stages: tuple[ApprovalStageConfig, ...] = (ApprovalStageConfig("risk desk"),)


@dataclass(frozen=True)
class EmergencyConfig:
    """Act without approval when risk degree stays above a line for a while. Off by default."""

    enabled: bool = False
    kind: str = "liquidate"
    risk_degree_above: float = 1.3
    for_s: float = 300.0


@dataclass(frozen=True)
class ApprovalConfig:
    """Who decides actions. No users: open (any named operator decides; four-eyes still holds)."""

    roles: tuple[str, ...] = ("risk_desk", "business_head", "executive")
    users: tuple[ApprovalUserConfig, ...] = ()
    policies: tuple[ApprovalPolicyConfig, ...] = ()  # kinds not listed: one risk-desk approval
    four_eyes: bool = True
    require_signature: bool = False
    request_max_age_s: float = 300.0
    expire_after_s: float = 0.0  # 0: pending proposals never expire on their own
    group_gap_s: float = 30.0  # proposals of one kind this close together form one batch group
    secrets_file: str = ""  # TOML {user = "secret"} outside the repository, read by the Executor
    http_port: int = -1  # approval routes over HTTP: -1 off, 0 any free port
    http_host: str = "127.0.0.1"
    emergency: EmergencyConfig = EmergencyConfig()


@dataclass(frozen=True)
class Config:
    cluster: ClusterConfig = ClusterConfig()
    market: MarketConfig = MarketConfig()
    accounts: AccountsConfig = AccountsConfig()
    orders: OrdersConfig = OrdersConfig()
    books: BooksConfig = BooksConfig()
    audit: AuditConfig = AuditConfig()
    notifier: NotifierConfig = NotifierConfig()
    approval: ApprovalConfig = ApprovalConfig()
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
    # Rule files (TOML, see examples/rules.toml) loaded with [[rules]] above as one rule set;
    # `fengkong rules apply FILE` replaces it on a running system.
    rules_files: tuple[str, ...] = ()
    console: ConsoleConfig = ConsoleConfig()
    people: tuple[PersonConfig, ...] = ()
    source: str = "<defaults>"


CHANNEL_TYPES = ("wecom", "twilio_sms", "twilio_voice", "email")
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


RULE_SCOPES = ("account", "group", "subsidiary", "unit", "strategy")


def _validate(cfg: Config) -> None:
    if cfg.accounts.shards < 1:
        _fail("accounts.shards", "must be at least 1")
    for i, policy in enumerate(cfg.accounts.policies):
        try:
            AccountPolicy(**policy)
        except (TypeError, ValueError) as exc:
            _fail(f"accounts.policies[{i}]", str(exc))
    if cfg.accounts.fund_flow.severity not in SEVERITIES:
        _fail("accounts.fund_flow.severity", f"must be one of {SEVERITIES}")
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
        if rule.scope not in RULE_SCOPES:
            _fail(f"{where}.scope", f"must be one of {RULE_SCOPES}")
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
    _validate_notifier(cfg.notifier)
    _validate_approval(cfg.approval)
    for i, person in enumerate(cfg.people):
        why = valid_role(person.role)
        if why:
            _fail(f"people[{i}] ({person.name}).role", why)


def _validate_approval(a: ApprovalConfig) -> None:
    """Users and stages must name configured roles; kinds must be action kinds."""
    roles = set(a.roles)
    names = [u.name for u in a.users]
    if len(set(names)) != len(names):
        _fail("approval.users", f"user names must be unique, got {names}")
    for i, u in enumerate(a.users):
        for r in u.roles:
            if r not in roles:
                _fail(f"approval.users[{i}] ({u.name}).roles", f"no role {r!r} in approval.roles")
    for i, p in enumerate(a.policies):
        where = f"approval.policies[{i}]"
        if p.kind not in ("reduce", "liquidate", "margin_call", "freeze"):
            _fail(f"{where}.kind", "must be reduce, liquidate, margin_call or freeze")
        if not p.stages:
            _fail(f"{where}.stages", "at least one stage is needed")
        for j, st in enumerate(p.stages):
            if st.approvers < 1:
                _fail(f"{where}.stages[{j}].approvers", "must be at least 1")
            for r in st.roles:
                if r not in roles:
                    _fail(f"{where}.stages[{j}].roles", f"no role {r!r} in approval.roles")
    if a.emergency.kind not in ("reduce", "liquidate"):
        _fail("approval.emergency.kind", "must be reduce or liquidate")


def _validate_notifier(n: NotifierConfig) -> None:
    """Rosters, chains and routes must name each other correctly; channel names are checked
    by the Notifier, because `make run` and tests wire channels after loading."""
    if n.max_attempts < 1 or n.workers < 1 or n.queue_limit < 2:
        _fail("notifier", "max_attempts and workers must be >= 1, queue_limit >= 2")
    rosters = {r.name for r in n.rosters}
    chains = {c.name for c in n.chains}
    for i, c in enumerate(n.chains):
        for j, level in enumerate(c.levels):
            if level.roster not in rosters:
                _fail(f"notifier.chains[{i}].levels[{j}].roster", f"no roster {level.roster!r}")
    for i, r in enumerate(n.routes):
        if r.chain not in chains and r.chain != "default":
            _fail(f"notifier.routes[{i}].chain", f"no chain {r.chain!r}")
        if r.min_severity not in SEVERITIES:
            _fail(f"notifier.routes[{i}].min_severity", f"must be one of {SEVERITIES}")


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
