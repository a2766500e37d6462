"""E-mail over SMTP (stdlib smtplib), HTML body with the alert's figures."""

from gateways.channels.email.channel import EmailChannel

__all__ = ["EmailChannel"]
