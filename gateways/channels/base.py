"""What every notification channel shares: the message, the answer, and how one is built.

Like Alertmanager's `Notify`, a channel's `send` answers whether a failure is worth retrying; the
retry loop (`retry.py`) decides when. Channels never raise for provider or network errors, so
the notifier can journal every attempt the same way.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

SEVERITIES = ("info", "warning", "critical", "emergency")


@dataclass(frozen=True)
class Notification:
    """One alert for one recipient on one channel.

    `idempotency_key` is stable per (alert, channel, recipient), so a retried or replayed send
    can be recognised as the same message by the provider (where it supports that) and by us.
    """

    alert_id: str
    idempotency_key: str
    severity: str
    title: str
    text: str
    markdown: str | None = None
    recipient: str = ""
    fields: dict[str, str | float] = field(default_factory=dict)
    # WeCom mobiles to @mention (a group message reaches a whole roster at once).
    mentions: tuple[str, ...] = ()
    # Signed reply link that acknowledges the alert (e-mail button, SMS tail).
    ack_url: str = ""
    # Keys of the notifications a coalesced message carries (rate-limited channels), else ().
    member_keys: tuple[str, ...] = ()

    def plain(self) -> str:
        """Title and text as one plain message (the title is not repeated if text starts with it)."""
        if not self.title or self.text.startswith(self.title):
            return self.text
        return f"{self.title}\n{self.text}" if self.text else self.title


@dataclass(frozen=True)
class DeliveryResult:
    """The answer of one attempt.

    `retry` is the channel's judgement: False for permanent errors (4xx, bad credentials, invalid
    number, unknown robot key), True for 5xx, timeouts, refused connections and rate limiting.
    `code` is the provider's own error code (WeCom errcode, Twilio error code) when there is one.
    """

    ok: bool
    retry: bool
    provider_id: str | None = None
    status: int | None = None
    error: str | None = None
    latency_ms: float = 0.0
    code: int | None = None


class Channel(Protocol):
    """A notification integration. `send` never raises for provider/network errors and never
    puts a secret in its result or its logs."""

    name: str
    kind: str

    def send(self, note: Notification) -> DeliveryResult: ...


def is_loopback(url: str) -> bool:
    """True when the URL points at this machine (a local sink)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_secret(cfg: Mapping, env_key: str, literal_key: str, *, base_url: str) -> str:
    """Read a secret from the environment variable named by cfg[env_key].

    A literal cfg[literal_key] is accepted only for a loopback base_url (a local sink), so a
    committed config can never carry a real credential.
    """
    name = cfg.get("name", cfg.get("type", "?"))
    env_name = cfg.get(env_key)
    if env_name:
        value = os.environ.get(env_name)
        if value:
            return value
    literal = cfg.get(literal_key)
    if literal:
        if not is_loopback(base_url):
            raise ValueError(
                f"channel {name!r}: literal {literal_key!r} is only allowed for a local sink "
                f"(base_url on 127.0.0.1); put the secret in an environment variable ({env_key})"
            )
        return str(literal)
    if env_name:
        raise ValueError(
            f"channel {name!r}: environment variable {env_name!r} ({env_key}) is not set"
        )
    raise ValueError(f"channel {name!r}: missing {env_key!r} (the environment variable to read)")


def redact(text: str, *secrets: str) -> str:
    """Replace every secret (and Twilio account SIDs) in a message with '***'."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return _SID.sub("AC***", text)


_SID = re.compile(r"AC[0-9a-fA-F]{32}")
_KEY_PARAM = re.compile(r"(key=)[^&\s\"']+")


class _RedactUrls(logging.Filter):
    """urllib3 logs request lines at DEBUG; WeCom keys ride in the query and Twilio SIDs in the
    path, so strip both before the record reaches any handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        cleaned = _SID.sub("AC***", _KEY_PARAM.sub(r"\1***", msg))
        if cleaned != msg:
            record.msg, record.args = cleaned, None
        return True


def install_log_redaction() -> None:
    """Idempotently add the redacting filter to urllib3's connection-pool logger."""
    logger = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(f, _RedactUrls) for f in logger.filters):
        logger.addFilter(_RedactUrls())
