"""WeCom (企业微信) group-robot webhook channel."""

from gateways.channels.wecom.channel import WeComChannel

__all__ = ["WeComChannel"]
