"""The Notifier's parts: rendering, the outbox, per-channel lanes, routing and escalation pages."""
