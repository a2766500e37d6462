"""The Notifier's edges (the machine itself is rules/notify/): `wiring` builds channels, lane
specs, the operator endpoint and metrics from config; `journal` is its view of the AuditLog, one
method per durability the machine's effects name (append, received, durable)."""
