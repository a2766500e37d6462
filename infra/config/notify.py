"""Config of the Notifier: rosters, escalation chains, routes, reply links and channels."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
    """Reply links in notifications ("tap to acknowledge"). The routes they open, and Twilio's
    callbacks, are the console's ([console] host, port, public_url); the journal keeps only a
    digest of each link's token (rules.notify.links)."""

    enabled: bool = True  # false: pages carry no reply link
    link_ttl_s: float = 86_400.0


@dataclass(frozen=True)
class NotifierConfig:
    max_attempts: int = 5
    base_delay_s: float = 0.2
    max_delay_s: float = 5.0
    workers: int = 8
    group_over: int = 5  # a Correlator group of more alerts than this becomes one digest page
    group_wait_s: float = 0.5  # deprecated, ignored: alerts are grouped once, by [hygiene]
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


CHANNEL_TYPES = ("wecom", "twilio_sms", "twilio_voice", "email")
# Keys every channel block may carry besides name and type (read by the Notifier's lanes and
# by every provider), then each type's own (gateways/channels/*/channel.py `from_config`).
CHANNEL_COMMON_KEYS = ("to", "failover", "rate_limit", "rate_window_s", "max_in_flight",
                       "linger_s", "base_url", "timeout")  # fmt: skip
_TWILIO = ("account_sid_env", "account_sid", "auth_token_env", "auth_token", "from",
           "callback_base")  # fmt: skip
CHANNEL_KEYS: dict[str, tuple[str, ...]] = {
    "wecom": ("key_env", "key", "markdown", "mention_mobiles"),
    "twilio_sms": (*_TWILIO, "status_callback", "max_body"),
    "twilio_voice": (*_TWILIO, "ring_timeout_s", "gather_timeout_s"),
    "email": ("from", "username", "password_env", "password", "starttls"),
}


def channel_from(data: dict[str, Any], path: str) -> ChannelConfig:
    """A `[[channels]]` block: name and type, plus the keys its type reads — a misspelt key
    is an error (with a did-you-mean), not a setting silently ignored."""
    from infra.config.errors import fail, hint

    for key in ("name", "type"):
        if key not in data:
            fail(f"{path}.{key}", "missing")
        if not isinstance(data[key], str):
            fail(f"{path}.{key}", f"expected a string, got {data[key]!r}")
    where = f"{path} ({data['name']})"
    kind = data["type"]
    if kind not in CHANNEL_TYPES:
        fail(f"{where}.type", f"must be one of {CHANNEL_TYPES}{hint(kind, CHANNEL_TYPES)}")
    allowed = ("name", "type", *CHANNEL_COMMON_KEYS, *CHANNEL_KEYS[kind])
    for key in data:
        if key not in allowed:
            fail(f"{where}.{key}", f"unknown key for a {kind} channel{hint(key, allowed)}")
    settings = {k: v for k, v in data.items() if k not in ("name", "type")}
    return ChannelConfig(name=data["name"], type=kind, settings=settings)
