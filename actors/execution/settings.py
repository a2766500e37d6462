"""The Executor's one typed settings object, built from the config (the supervisor passes it)."""

from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

from infra.config import Config
from rules.execution.messages import ExecutionSettings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

TIMING_KEYS = (
    "reprice_after_s",
    "max_reprices",
    "verify_timeout_s",
    "query_after_s",
    "mark_interval_s",
)


@dataclass(frozen=True)
class ExecutorSettings:
    order_endpoint: str
    reports_endpoint: str
    n_shards: int
    name_prefix: str = ""
    approval: dict[str, Any] = field(default_factory=dict)  # [approval] as data
    execution: ExecutionSettings = ExecutionSettings()

    def secret(self, user: str) -> str | None:
        """A person's signing secret: their variable, else the secrets file outside the
        repository. Read when needed, never logged, never journaled."""
        for u in self.approval.get("users", ()):
            if u.get("name") == user:
                if u.get("secret_env") and os.environ.get(u["secret_env"]):
                    return os.environ[u["secret_env"]]
                break
        path = self.approval.get("secrets_file")
        if path and os.path.exists(path):
            with open(path, "rb") as fh:
                value = tomllib.load(fh).get(user)
            return str(value) if value else None
        return None


def executor_settings(cfg: Config, prefix: str = "") -> ExecutorSettings:
    """The Executor's settings from the config."""
    approval = asdict(cfg.approval)  # no http_port: the approval API is the console's
    timing = {k: getattr(cfg.orders, k) for k in TIMING_KEYS}
    return ExecutorSettings(
        order_endpoint=cfg.orders.endpoint,
        reports_endpoint=cfg.orders.reports_endpoint,
        n_shards=cfg.accounts.shards,
        name_prefix=prefix,
        approval=approval,
        execution=ExecutionSettings(
            **timing,
            group_gap_s=float(approval.get("group_gap_s", 30.0)),
            target_tolerance=float(cfg.approval.target_tolerance),
        ),
    )
