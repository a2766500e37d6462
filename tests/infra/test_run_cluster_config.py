"""What `fengkong run` settles before Ray starts, and what a deployed system checks, without
Ray: secrets per role (never every secret for every actor), the job's runtime_env, where an
edge binds, the config's relative paths, loopback endpoints refused for a remote head, the
endpoints published by edges rewritten into the config, and health problems as transitions."""

from __future__ import annotations

import dataclasses
import socket
from types import SimpleNamespace

import pytest

from app.edges import edge_roles, with_endpoints
from app.preflight import cluster_problems
from app.run_command import resolve_paths
from app.system_health import Health, reachable
from infra import config
from infra.cluster import (
    Placement,
    bind_host,
    job_runtime_env,
    port_of,
    read_secrets_file,
    role_secrets,
)
from infra.config import ClusterConfig, ConfigError

SMS = {"name": "sms", "type": "twilio_sms", "account_sid_env": "TW_SID",
       "auth_token_env": "TW_TOKEN", "from": "+15005550006", "to": ["+8613800138000"]}  # fmt: skip
WECOM = {"name": "desk", "type": "wecom", "key_env": "WECOM_KEY"}


def test_each_role_gets_only_the_secrets_its_config_names(tmp_path) -> None:
    env = tmp_path / "secrets.env"
    env.write_text("# mounted Secret\nTW_TOKEN='from-file'\nexport WECOM_KEY=\"k1\"\nOTHER=x\n")
    cfg = config.from_dict(
        {"channels": [SMS, WECOM], "cluster": {"secrets_file": str(env)}}, source="<t>"
    )
    secrets = role_secrets(cfg, environ={"TW_SID": "AC1", "TW_TOKEN": "from-env", "HOME": "/"})
    # the console checks Twilio's callbacks against the token too (issue 14: it did not get it)
    assert secrets == {"Notifier": {"TW_SID": "AC1", "TW_TOKEN": "from-file", "WECOM_KEY": "k1"},
                       "Console": {"TW_TOKEN": "from-file"}}  # fmt: skip
    p = Placement(cfg.cluster, detached=True, offered={"CPU": 2.0}, secrets=secrets)
    assert p.options("Notifier")["runtime_env"] == {"env_vars": secrets["Notifier"]}
    for role in ("Executor", "AuditLog", "AccountShard", "Correlator", "Supervisor"):
        assert "runtime_env" not in p.options(role), role


def test_a_bad_secrets_line_names_its_number_not_its_value(tmp_path) -> None:
    env = tmp_path / "s.env"
    env.write_text("A=1\nthis-is-a-secret-without-key\n")
    with pytest.raises(ConfigError, match=r"s.env:2: expected KEY=VALUE") as err:
        read_secrets_file(str(env))
    assert "this-is-a-secret" not in str(err.value)
    with pytest.raises(ConfigError, match="file not found"):
        read_secrets_file(str(tmp_path / "missing.env"))


def test_the_job_runtime_env_carries_code_and_plain_variables_never_secrets() -> None:
    assert job_runtime_env(ClusterConfig()) == {}
    c = ClusterConfig(working_dir="/srv/fk", env_vars={"TZ": "Asia/Shanghai"},
                      secrets_file="/etc/s.env")  # fmt: skip
    assert job_runtime_env(c) == {"working_dir": "/srv/fk", "env_vars": {"TZ": "Asia/Shanghai"}}


def test_edges_bind_on_an_ip_or_an_interface_and_keep_the_configured_port() -> None:
    assert bind_host("10.1.2.3") == "10.1.2.3"
    assert bind_host("lo") == "127.0.0.1"
    with pytest.raises(ConfigError, match="cluster.bind: no interface 'nosuch0'"):
        bind_host("nosuch0")
    assert port_of("tcp://*:21711") == 21711
    with pytest.raises(ConfigError, match="expected tcp://host:port"):
        port_of("ipc:///tmp/x")


def test_edge_placement_pins_the_bus_and_gateway_and_the_market_edges() -> None:
    offered = {"CPU": 4.0, "fengkong_journal": 1.0, "fengkong_edge": 1.0}
    p = Placement(ClusterConfig(), offered=offered)
    for role in ("AccountBus", "OrderGateway", "Supervisor"):
        assert p.options(role)["resources"] == {"fengkong_journal": 0.01}, role
    assert p.options("SimMarket")["resources"] == {"fengkong_edge": 0.01}
    assert "resources" not in Placement(ClusterConfig(), offered={"CPU": 1}).options("SimMarket")


def test_relative_paths_resolve_against_the_config_folder(tmp_path) -> None:
    f = tmp_path / "etc" / "fk.toml"
    f.parent.mkdir()
    f.write_text(
        'contracts_overrides = ["contracts.toml"]\nrules_files = ["/abs/rules.toml"]\n'
        '[cluster]\nsecrets_file = "s.env"\nworking_dir = "."\nmarket = "replay"\n'
        'market_files = ["ticks/a.csv"]\n[books]\ninputs_dir = "in"\n'
        '[market]\nholidays_file = "holidays.json"\n'
    )
    cfg = resolve_paths(config.load(f))
    etc = tmp_path / "etc"
    assert cfg.contracts_overrides == (str(etc / "contracts.toml"),)
    assert cfg.rules_files == ("/abs/rules.toml",)
    assert cfg.cluster.secrets_file == str(etc / "s.env")
    assert cfg.cluster.working_dir == str(etc / ".")
    assert cfg.cluster.market_files == (str(etc / "ticks" / "a.csv"),)
    assert cfg.books.inputs_dir == str(etc / "in")
    assert cfg.market.holidays_file == str(etc / "holidays.json")
    assert cfg.console.store_path == str(etc / "var" / "console.sqlite")
    assert cfg.approval.secrets_file == ""  # unset stays unset


def test_a_remote_head_refuses_loopback_endpoints_but_not_those_of_started_edges() -> None:
    cfg = config.default()
    assert cluster_problems(cfg, None) == []  # a local Ray: loopback is right
    assert cluster_problems(cfg, "ray://127.0.0.1:10001") == []
    found = cluster_problems(cfg, "ray://10.0.0.5:10001")
    assert any(p.startswith("accounts.endpoint: tcp://127.0.0.1:21711") for p in found), found
    assert any(p.startswith("market.feeds[sim].endpoint") for p in found)
    started = config.from_dict(
        {"cluster": {"account_bus": True, "order_gateway": "sim", "market": "sim",
                     "address": "ray://head:10001"}}, source="<t>")  # fmt: skip
    # the console's default URL is loopback too: pages would link where no one can reach
    assert cluster_problems(started, None) == [
        "console.public_url: 127.0.0.1:8000 is a loopback address, unreachable from the other "
        "hosts of ray://head:10001"
    ]
    reachable = dataclasses.replace(
        started, console=dataclasses.replace(started.console, host="0.0.0.0",
                                             public_url="http://head:8000"),
    )  # fmt: skip
    assert cluster_problems(reachable, None) == []


def test_edges_named_by_the_config_and_their_endpoints_rewrite_it() -> None:
    assert edge_roles(config.default()) == []
    cfg = config.from_dict(
        {"cluster": {"account_bus": True, "order_gateway": "sim", "market": "sim"}}, source="<t>"
    )
    assert edge_roles(cfg) == ["AccountBus", "SimMarket", "OrderGateway"]
    wired = with_endpoints(cfg, {"accounts.endpoint": "tcp://10.0.0.7:21711",
                                 "market.feeds.sim": "tcp://10.0.0.8:21701"})  # fmt: skip
    assert wired.accounts.endpoint == "tcp://10.0.0.7:21711"
    assert wired.accounts.snapshot_endpoint == cfg.accounts.snapshot_endpoint
    assert wired.market.feeds[0].endpoint == "tcp://10.0.0.8:21701"
    with pytest.raises(ConfigError, match="cluster.market"):
        config.from_dict({"cluster": {"market": "ctp"}})
    with pytest.raises(ConfigError, match="cluster.market_files"):
        config.from_dict({"cluster": {"market": "replay"}})


def test_default_ports_lie_outside_rays_worker_range() -> None:
    cfg = config.default()
    eps = [cfg.accounts.endpoint, cfg.accounts.snapshot_endpoint, cfg.accounts.inbound_endpoint,
           cfg.orders.endpoint, cfg.orders.reports_endpoint, cfg.market.feeds[0].endpoint]  # fmt: skip
    assert all(not 10002 <= port_of(ep) <= 19999 for ep in eps), eps


def test_health_problems_are_journaled_once_when_raised_and_once_when_cleared() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    up = f"tcp://127.0.0.1:{listener.getsockname()[1]}"
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    down = f"tcp://127.0.0.1:{probe.getsockname()[1]}"  # bound, not listening: refused
    assert reachable(up) and not reachable(down)
    reports: list[tuple[str, dict]] = []
    health = Health(lambda kind, payload: reports.append((kind, payload)))
    feeds = (SimpleNamespace(name="sim", endpoint=up),)
    cfg = SimpleNamespace(
        accounts=SimpleNamespace(endpoint=up, snapshot_endpoint=down),
        orders=SimpleNamespace(endpoint=up, reports_endpoint=up),
        market=SimpleNamespace(feeds=feeds),
    )
    health.check(cfg, None, started=0.0)
    health.check(cfg, None, started=0.0)  # still down: not journaled again
    assert reports == [("system.health", {"problem": "endpoint_unreachable",
                        "subject": "accounts.snapshot_endpoint", "detail": down,
                        "state": "raised"})]  # fmt: skip
    assert health.lines() == [f"endpoint_unreachable accounts.snapshot_endpoint: {down}"]
    cfg.accounts.snapshot_endpoint = up
    health.check(cfg, None, started=0.0)
    assert reports[-1][1]["state"] == "cleared" and health.lines() == []
    listener.close()
    probe.close()


def test_the_shipped_kubernetes_config_needs_nothing_else_and_says_no_loopback(tmp_path) -> None:
    import yaml

    from tests.infra.test_deploy_artifacts import DEPLOY

    (cm,) = [d for d in yaml.safe_load_all((DEPLOY / "kubernetes" / "config.yaml").read_text())]
    text = cm["data"]["fengkong.toml"]
    assert "127.0.0.1" not in text
    path = tmp_path / "fengkong.toml"
    path.write_text(text)
    cfg = config.load(str(path))
    assert edge_roles(cfg) == ["AccountBus", "SimMarket", "OrderGateway"]
    assert cfg.cluster.secrets_file == "/etc/fengkong-secrets/secrets.env"
    assert cluster_problems(cfg, "ray://fengkong-head-svc:10001") == []
    env = tmp_path / "secrets.env"  # stands for the Secret mounted in the pod
    env.write_text("FENGKONG_WECOM_KEY=k\nFENGKONG_CTP_PASSWORD=p\n")
    cfg = dataclasses.replace(cfg, cluster=dataclasses.replace(cfg.cluster, secrets_file=str(env)))
    assert role_secrets(cfg, environ={}) == {"Notifier": {"FENGKONG_WECOM_KEY": "k"}}
