"""The Executor's one typed settings object, built from the config (the supervisor passes it)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from infra.approval_keys import console_key, person_secret
from rules.execution.messages import ExecutionSettings

if TYPE_CHECKING:  # a hint only: the Executor's process unpickles these settings without the
    from infra.config import Config  # config package (~0.2 s of its start)

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
    # the deployment's key for decision records (rules.execution.seal); never in a repr
    seal_key: str = field(default="", repr=False)

    def secret(self, user: str) -> str | None:
        """A person's signing secret: their variable, else the secrets file outside the
        repository (one lookup: infra.approval_keys). Read when needed, never logged."""
        return person_secret(self.approval, user)

    def console_key(self) -> str | None:
        return console_key(self.approval)


def executor_settings(cfg: Config, prefix: str = "", seal_key: str = "") -> ExecutorSettings:
    """The Executor's settings from the config (`seal_key`: the deployment's, shared with the
    AuditLog that checks it). No http_port: the approval API is the console's."""
    approval = asdict(cfg.approval)
    timing = {k: getattr(cfg.orders, k) for k in TIMING_KEYS}
    return ExecutorSettings(
        order_endpoint=cfg.orders.endpoint,
        reports_endpoint=cfg.orders.reports_endpoint,
        n_shards=cfg.accounts.shards,
        name_prefix=prefix,
        approval=approval,
        seal_key=seal_key,
        execution=ExecutionSettings(
            **timing,
            group_gap_s=float(approval.get("group_gap_s", 30.0)),
            target_tolerance=float(cfg.approval.target_tolerance),
        ),
    )
