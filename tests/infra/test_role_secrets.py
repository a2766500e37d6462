"""Approval secrets reach only the roles that use them (issue 14): people's signing secrets,
the console's key and the seal key go to the Executor (it checks every signature and seals
decision records), the console's key and the Twilio tokens to the console (its sessions'
decisions, Twilio's callbacks), the channel secrets to the Notifier; no other role gets any."""

from __future__ import annotations

from infra import config
from infra.cluster import Placement, role_secrets, secret_names

SMS = {"name": "sms", "type": "twilio_sms", "account_sid_env": "TW_SID",
       "auth_token_env": "TW_TOKEN", "from": "+15005550006", "to": ["+8613800138000"]}  # fmt: skip
SECRETS = "RISK_ZHANG=s-zhang\nRISK_LI=s-li\nFK_SEAL=seal\nFK_CONSOLE=ck\nTW_TOKEN=t\nTW_SID=a\n"


def _cfg(tmp_path, console: bool = True) -> config.Config:
    env = tmp_path / "secrets.env"
    env.write_text(SECRETS)
    users = [{"name": "risk.zhang", "roles": ["risk_desk"], "secret_env": "RISK_ZHANG"},
             {"name": "risk.li", "roles": ["risk_desk"], "secret_env": "RISK_LI"}]  # fmt: skip
    return config.from_dict(
        {"channels": [SMS], "cluster": {"secrets_file": str(env)},
         "approval": {"users": users, "seal_key_env": "FK_SEAL", "console_key_env": "FK_CONSOLE"},
         "console": {"enabled": console}},
        source="<t>",
    )  # fmt: skip


def test_approval_secrets_reach_the_executor_and_the_console_only(tmp_path) -> None:
    cfg = _cfg(tmp_path)
    secrets = role_secrets(cfg, environ={"HOME": "/", "OTHER": "x"})
    assert secrets == {
        "Notifier": {"TW_SID": "a", "TW_TOKEN": "t"},
        "Executor": {"RISK_ZHANG": "s-zhang", "RISK_LI": "s-li", "FK_SEAL": "seal",
                     "FK_CONSOLE": "ck"},
        "Console": {"FK_CONSOLE": "ck", "TW_TOKEN": "t"},
    }  # fmt: skip
    p = Placement(cfg.cluster, detached=True, offered={"CPU": 2.0}, secrets=secrets)
    assert p.options("Executor")["runtime_env"] == {"env_vars": secrets["Executor"]}
    roles = ("AuditLog", "AccountShard", "Correlator", "Supervisor", "MarketFeed", "Hierarchy",
             "ExposureBook", "AccountBus", "SimMarket", "OrderGateway")  # fmt: skip
    for role in roles:
        assert "runtime_env" not in p.options(role), role
    assert "FK_SEAL" not in p.options("Notifier")["runtime_env"]["env_vars"]


def test_without_a_console_no_console_secrets_and_empty_roles_are_left_out(tmp_path) -> None:
    cfg = _cfg(tmp_path, console=False)
    assert "Console" not in secret_names(cfg)
    (tmp_path / "secrets.env").write_text("TW_SID=a\n")
    assert role_secrets(cfg, environ={}) == {"Notifier": {"TW_SID": "a"}}


def test_calls_to_a_deployed_journal_wait_for_it_however_long_its_node_is_lost() -> None:
    from infra.config import ClusterConfig

    p = Placement(ClusterConfig(), detached=True, offered={"CPU": 2.0})
    assert p.options("AuditLog")["max_task_retries"] == -1
    assert "max_task_retries" not in p.options("Executor")  # its own calls: not idempotent
    assert "max_task_retries" not in Placement(ClusterConfig(), offered={}).options("AuditLog")
