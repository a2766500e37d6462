"""One TOML config file, validated once at load into frozen, typed objects.

An error names the file, the dotted key and why (unknown key with a did-you-mean, wrong type,
bad value), so a broken config fails at start-up and never half-way through a trading day.
Secrets are never in here: channels name the environment variables that hold them.

One module per group of tables (market, tables, notify, approval), the loader, and `legacy`:
the old rule spellings (`[[rules]]`, `[[market.rules]]`, `[[books.limits]]`,
`[accounts.fund_flow]`) as rule-engine rules, with a deprecation message each.

Names are loaded from their module on first use (PEP 562): actors import this package for one
settings type each, and must not pay for the loader and every rule kind it pulls in.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from infra.config.approval import (
        ApprovalConfig,
        ApprovalPolicyConfig,
        ApprovalStageConfig,
        ApprovalUserConfig,
        EmergencyConfig,
        SimConfig,
    )
    from infra.config.errors import (
        SEVERITIES,
        ConfigError,
    )
    from infra.config.loader import (
        EDGE_TABLES,
        EDGE_VALIDATORS,
        Config,
        default,
        from_dict,
        load,
    )
    from infra.config.market import (
        DEFAULT_MARKET_RULES,
        ClusterConfig,
        FeedConfig,
        MarketConfig,
        MarketRuleConfig,
        MarketStatsConfig,
    )
    from infra.config.notify import (
        CHANNEL_KEYS,
        CHANNEL_TYPES,
        ChainConfig,
        ChannelConfig,
        ContactConfig,
        LevelConfig,
        NotifierConfig,
        OperatorConfig,
        RosterConfig,
        RouteConfig,
        SinkConfig,
        StepConfig,
    )
    from infra.config.tables import (
        AccountsConfig,
        AuditConfig,
        BooksConfig,
        ExposureLimitConfig,
        FundFlowConfig,
        OrdersConfig,
        RuleConfig,
    )

_MODULE_OF = {
    **dict.fromkeys(
        (
            "ApprovalConfig",
            "ApprovalPolicyConfig",
            "ApprovalStageConfig",
            "ApprovalUserConfig",
            "EmergencyConfig",
            "SimConfig",
        ),
        "approval",
    ),
    **dict.fromkeys(("SEVERITIES", "ConfigError"), "errors"),
    **dict.fromkeys(
        ("EDGE_TABLES", "EDGE_VALIDATORS", "Config", "default", "from_dict", "load"), "loader"
    ),
    **dict.fromkeys(
        (
            "DEFAULT_MARKET_RULES",
            "ClusterConfig",
            "FeedConfig",
            "MarketConfig",
            "MarketRuleConfig",
            "MarketStatsConfig",
        ),
        "market",
    ),
    **dict.fromkeys(
        (
            "CHANNEL_KEYS",
            "CHANNEL_TYPES",
            "ChainConfig",
            "ChannelConfig",
            "ContactConfig",
            "LevelConfig",
            "NotifierConfig",
            "OperatorConfig",
            "RosterConfig",
            "RouteConfig",
            "SinkConfig",
            "StepConfig",
        ),
        "notify",
    ),
    **dict.fromkeys(
        (
            "AccountsConfig",
            "AuditConfig",
            "BooksConfig",
            "ExposureLimitConfig",
            "FundFlowConfig",
            "OrdersConfig",
            "RuleConfig",
        ),
        "tables",
    ),
}

__all__ = [
    "CHANNEL_KEYS", "CHANNEL_TYPES", "DEFAULT_MARKET_RULES", "EDGE_TABLES", "EDGE_VALIDATORS", "SEVERITIES", "AccountsConfig",
    "ApprovalConfig", "ApprovalPolicyConfig", "ApprovalStageConfig", "ApprovalUserConfig",
    "AuditConfig", "BooksConfig", "ChainConfig", "ChannelConfig", "ClusterConfig", "Config",
    "ConfigError", "ContactConfig", "EmergencyConfig", "ExposureLimitConfig", "FeedConfig",
    "FundFlowConfig", "LevelConfig", "MarketConfig", "MarketRuleConfig",
    "MarketStatsConfig", "NotifierConfig", "OperatorConfig", "OrdersConfig", "RosterConfig",
    "RouteConfig", "RuleConfig", "SimConfig", "SinkConfig", "StepConfig", "default",
    "from_dict", "load",
]  # fmt: skip


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'infra.config' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"infra.config.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
