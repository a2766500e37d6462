"""Config of accounts, orders, books, the journal and the legacy `[[rules]]` table."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class AccountsConfig:
    shards: int = 2
    endpoint: str = "tcp://127.0.0.1:21711"  # account bus PUB (live events)
    snapshot_endpoint: str = "tcp://127.0.0.1:21712"  # account bus ROUTER (replay from seq)
    inbound_endpoint: str = "tcp://127.0.0.1:21713"  # account bus PULL (sources, fills)
    margin_markup: float = 0.0  # broker's markup over the exchange margin rate
    flush_ms: int = 100  # how often shards send events and exposures on
    # How account groups are marked, first match wins: {match = "grpA/*", cost = "by_date" |
    # "by_trade", margin_price = "pre_settlement" | "last" | "average" | "open", markup = 0.02,
    # single_side = "exchange" | "off" (单边大保证金), fee_multiplier = 1.0 (over exchange fees)}
    policies: tuple[dict[str, Any], ...] = ()
    fund_flow: FundFlowConfig = field(default_factory=lambda: FundFlowConfig())
    # Records the account bus keeps in its log (all buckets); older ones are compacted to each
    # account's latest snapshot and what followed (gateways/accounts/bus_compact.py).
    bus_log_size: int = 200_000

    def __post_init__(self) -> None:
        n = self.bus_log_size
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            from infra.config.errors import ConfigError

            raise ConfigError(f"accounts.bus_log_size: must be a positive integer, got {n!r}")


@dataclass(frozen=True)
class FundFlowConfig:
    """`[accounts.fund_flow]` (deprecated: two fund_flow rules in a rules file, see
    infra.config.legacy.fund_flow_specs)."""

    k: float = 2.0  # a day's outflow above k × the mean of the last `days` days fires
    days: int = 20
    min_days: int = 5
    single_limit: float = 5_000_000.0  # a single transfer above this fires
    severity: str = "warning"


@dataclass(frozen=True)
class OrdersConfig:
    endpoint: str = "tcp://127.0.0.1:21721"  # order gateway PULL
    reports_endpoint: str = "tcp://127.0.0.1:21722"  # order gateway PUB (order status, fills)
    reprice_after_s: float = 5.0  # an order still working after this is cancelled and re-priced
    max_reprices: int = 3  # then it is cancelled for good and the action verified as it stands
    verify_timeout_s: float = 10.0  # after the last fill, how long the account may take to show it
    query_after_s: float = 2.0  # no report for this long: ask the gateway for the order's status
    mark_interval_s: float = 5.0  # journal figures and prices of accounts with open proposals


@dataclass(frozen=True)
class ExposureLimitConfig:
    """An exposure limit (deprecated spelling of a threshold rule of scope commodity or
    business_unit in a rules file; metrics: rules.exposure.LIMIT_METRICS)."""

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
        from infra.config.legacy import book_limit_spec

        book_limit_spec(self)  # validated as the rule it stands for (ConfigError)


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
    # how long a commit waits for a lock another process holds on the file before it fails
    # (the records stay queued and go with the next commit; a durable caller hears it failed)
    busy_timeout_s: float = 5.0
    archive_dir: str = "var/archive"  # `fengkong audit archive` writes one file per day here
    archive_key_env: str = "FENGKONG_ARCHIVE_KEY"  # 32-byte key (hex/base64): AES-256-GCM when set


@dataclass(frozen=True)
class RuleConfig:
    """A `[[rules]]` entry of the config (deprecated: a threshold rule in a rules file)."""

    id: str
    metric: str = "risk_degree"
    op: str = ">"
    threshold: float = 0.8
    rearm: float = 0.75
    severity: str = "warning"
    description: str = ""
    action: dict[str, Any] = field(default_factory=dict)
    scope: str = "account"  # account, group, subsidiary, unit or strategy (roll-up nodes)
