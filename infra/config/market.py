"""Config of the market dimension: cluster, feeds, per-contract statistics, market rules."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from infra.config.errors import ConfigError


@dataclass(frozen=True)
class ClusterConfig:
    address: str = ""  # "" starts a local Ray; "auto" or "ray://host:10001" joins a cluster
    namespace: str = "fengkong"
    dashboard_host: str = "127.0.0.1"
    dashboard_port: int = 8265
    # The interface Ray binds on (issue 13 item 5): a local start uses 127.0.0.1 unless this
    # names the node's own address; a driver joining a cluster gives it only when set.
    node_ip_address: str = ""
    # Placement (docs/deploy.md). A custom resource is requested only when the cluster offers it,
    # so the same config runs on one laptop: shards ask for `shard_resource` and are SPREAD over
    # nodes; the stateful singletons (AuditLog, Executor, Notifier) ask for `journal_resource`.
    shard_resource: str = "fengkong_shard"
    journal_resource: str = "fengkong_journal"
    # The market edges (SimMarket, replay) ask for this one: nodes with a stable, routable
    # address for the publishers outside (a move re-wires the feeds: docs/deploy.md).
    edge_resource: str = "fengkong_edge"
    # CPUs each role requests, by role name (AccountShard, AuditLog, Executor, Correlator, ...);
    # a role not named requests 0 (fits a laptop; set real values so an autoscaler sees load).
    num_cpus: dict[str, float] = field(default_factory=dict)
    # Edges `fengkong run` starts as placed actors (docs/deploy.md); off by default, so a config
    # whose bus, order gateway or market run as their own processes keeps them there.
    account_bus: bool = False  # the account bus ([accounts] ports), pinned like the journal
    order_gateway: str = ""  # "sim": the simulated exchange's order gateway on [orders] ports
    market: str = ""  # "sim" (SimExchange + simulated accounts) or "replay" (market_files)
    market_files: tuple[str, ...] = ()  # tick CSVs for market = "replay"
    # Where edges bind: "" the node's IP (ray.util.get_node_ip_address()), else an IP or an
    # interface name (eth0). Only the port of a started edge's configured endpoint is used.
    bind: str = ""
    # runtime_env of the job: a folder shipped to every node ("" = the installed package / the
    # image) and plain (non-secret) environment variables for every worker.
    working_dir: str = ""
    env_vars: dict[str, str] = field(default_factory=dict)
    # KEY=VALUE lines (a Kubernetes Secret mounted as a file, a docker env-file): each actor gets
    # only the variables its own config names (`*_env` keys), never every secret.
    secrets_file: str = ""
    # How often the supervisor of `fengkong run` checks that every actor lives, that a restarted
    # bus is refilled and the system's health: the longest an actor dead past its restarts
    # waits before the system is rebuilt.
    reconcile_s: float = 5.0

    def __post_init__(self) -> None:
        r = self.reconcile_s
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not 0 < r <= 3600:
            raise ConfigError(
                f"cluster.reconcile_s: must be a number of seconds in (0, 3600], got {r!r}"
            )
        if self.order_gateway not in ("", "sim"):
            raise ConfigError(
                f'cluster.order_gateway: must be "sim" or "", got {self.order_gateway!r}'
            )
        if self.market not in ("", "sim", "replay"):
            raise ConfigError(f'cluster.market: must be "sim", "replay" or "", got {self.market!r}')
        if self.market == "replay" and not self.market_files:
            raise ConfigError('cluster.market_files: market = "replay" needs tick CSV files')
        for role, n in self.num_cpus.items():
            if isinstance(n, bool) or not isinstance(n, (int, float)) or n < 0:
                raise ConfigError(f"cluster.num_cpus.{role}: must be a number >= 0, got {n!r}")


@dataclass(frozen=True)
class FeedConfig:
    name: str = "sim"
    endpoint: str = "tcp://127.0.0.1:21701"
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
    """A market rule (deprecated spelling of a rule file's market kinds, see
    rules.engine.kinds.market for kinds and metrics)."""

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
        from infra.config.legacy import market_rule_spec

        market_rule_spec(self)  # validated as the rule it stands for (ConfigError)


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
    for key in ("lag_bound_ms", "future_tolerance_s", "max_backlog_frames"):
        value = getattr(m, key)
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise ConfigError(f"market.{key}: must be a positive number, got {value!r}")
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
    # Flood and clock defences of the feed (actors/feed_lag.py, actors/feed_ingest.py):
    lag_bound_ms: int = 1000  # prices reaching subscribers later than this raise market.feed_lag
    future_tolerance_s: float = 5.0  # a tick stamped further ahead of the feed clock is rejected
    max_backlog_frames: int = 200_000  # frames received but not folded; the oldest drop beyond

    def __post_init__(self) -> None:
        _check_market(self)
