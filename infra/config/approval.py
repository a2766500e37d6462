"""Config of approvals (who decides actions) and of the simulation `make run` drives."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SimConfig:
    accounts: int = 10_000
    contracts: int = 60
    positions_per_account: int = 3
    ticks_per_contract_hz: float = 4.0
    shock_at_s: float = 20.0
    shock_products: tuple[str, ...] = ("rb", "hc", "i", "j", "jm")
    shock_pct: float = -0.05
    duration_s: float = 50.0
    auto_approve_as: str = "demo-risk-desk"  # "" leaves proposals pending for the CLI
    seed: int = 7
    # Random price jumps (0.5–1.5%) per tick of the simulated market. 0: a calm market that
    # only the scripted shock moves far, so every alert of the demo is the shock's (a jump of
    # 1% on a leveraged account near the line is an alert of its own, and a market.jump one).
    jump_prob: float = 0.0


@dataclass(frozen=True)
class ApprovalUserConfig:
    """A person who may decide; `secret_env` names the variable holding their signing secret."""

    name: str
    roles: tuple[str, ...] = ()
    secret_env: str = ""


@dataclass(frozen=True)
class ApprovalStageConfig:
    name: str
    roles: tuple[str, ...] = ("risk_desk",)
    approvers: int = 1  # distinct people needed (2: four eyes within the stage)
    time_limit_s: float = 0.0  # 0: none; past it the stage is escalated through the notifier


@dataclass(frozen=True)
class ApprovalPolicyConfig:
    """Stages of one action kind from `min_size` up (size: plan notional or margin-call amount)."""

    kind: str
    min_size: float = 0.0
    stages: tuple[ApprovalStageConfig, ...] = (ApprovalStageConfig("risk desk"),)


@dataclass(frozen=True)
class EmergencyConfig:
    """Act without approval when risk degree stays above a line for a while. Off by default."""

    enabled: bool = False
    kind: str = "liquidate"
    risk_degree_above: float = 1.3
    for_s: float = 300.0


@dataclass(frozen=True)
class ApprovalConfig:
    """Who decides actions. No users: open (any named operator decides; four-eyes still holds)."""

    roles: tuple[str, ...] = ("risk_desk", "business_head", "executive")
    users: tuple[ApprovalUserConfig, ...] = ()
    policies: tuple[ApprovalPolicyConfig, ...] = ()  # kinds not listed: one risk-desk approval
    four_eyes: bool = True
    require_signature: bool = False
    request_max_age_s: float = 300.0
    expire_after_s: float = 0.0  # 0: pending proposals never expire on their own
    group_gap_s: float = 30.0  # proposals of one kind this close together form one batch group
    # A target counts as met within this band of risk degree, a fraction like every risk degree
    # of the config (0.0005 = 0.05 percentage points: 70.01% against 70% is met): prices move in
    # ticks and figures are floats. The verify step (and moot) of the Executor uses it.
    target_tolerance: float = 0.0005
    secrets_file: str = ""  # TOML {user = "secret"} outside the repository, read by the Executor
    emergency: EmergencyConfig = EmergencyConfig()
    # Issue 13 item 5. Outside `demo_open` every decision is signed by a person (their secret:
    # secret_env, else secrets_file) or by the console (its key: console_key_env, else the
    # secrets file's "@console"); decision records are sealed with the deployment's seal key
    # (seal_key_env, else "@seal", else one drawn at start). `demo_open` (unsigned decisions,
    # any name when there is no roster) is for `fengkong demo` only: `fengkong run` refuses it.
    demo_open: bool = False
    console_key_env: str = "FENGKONG_CONSOLE_KEY"
    seal_key_env: str = "FENGKONG_SEAL_KEY"
