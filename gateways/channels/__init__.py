"""Outbound notification channels: one folder per provider, each with one `send`, and the registry
that builds a channel from its config block.

The registry lives here, above the providers, so `base.py` (what every channel shares) imports
none of them. Providers are imported when first built: a config without voice never loads it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from gateways.channels.base import Channel


def _wecom(cfg: Mapping) -> Channel:
    from gateways.channels.wecom import WeComChannel

    return WeComChannel.from_config(cfg)


def _twilio_sms(cfg: Mapping) -> Channel:
    from gateways.channels.twilio_sms import TwilioSmsChannel

    return TwilioSmsChannel.from_config(cfg)


def _twilio_voice(cfg: Mapping) -> Channel:
    from gateways.channels.twilio_voice import TwilioVoiceChannel

    return TwilioVoiceChannel.from_config(cfg)


def _email(cfg: Mapping) -> Channel:
    from gateways.channels.email import EmailChannel

    return EmailChannel.from_config(cfg)


CHANNEL_TYPES: dict[str, Callable[[Mapping], Channel]] = {
    "wecom": _wecom,
    "twilio_sms": _twilio_sms,
    "twilio_voice": _twilio_voice,
    "email": _email,
}


def build_channel(cfg: Mapping) -> Channel:
    """Build a channel from its config block, dispatching on cfg["type"]."""
    kind = cfg.get("type")
    factory = CHANNEL_TYPES.get(kind)  # type: ignore[arg-type]
    if factory is None:
        raise ValueError(
            f"channel {cfg.get('name', '?')!r}: unknown type {kind!r} "
            f"(known: {', '.join(sorted(CHANNEL_TYPES))})"
        )
    return factory(cfg)
