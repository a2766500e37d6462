"""Outbound notification channels: one folder per provider, each with one `send`."""
