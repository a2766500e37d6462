"""The [ctp] tables: validated on their own through the config loader's edge hook; errors name
the dotted key (did-you-mean for unknown keys); credentials only from env or a secrets file."""

from __future__ import annotations

import pytest

from gateways.ctp.config import CtpConfigError, credentials, parse, register
from infra import config as config_mod

SIMNOW = {
    "md": {"fronts": ["tcp://182.254.243.31:30011"], "feed": "sim", "instruments": ["rb2610"]},
    "investors": [{"name": "simnow", "fronts": ["tcp://182.254.243.31:30001"],
                   "broker_id": "9999", "user_id": "000001", "app_id": "simnow_client_test",
                   "password_env": "FK_TEST_CTP_PW", "auth_code_env": "FK_TEST_CTP_AC"}],
}  # fmt: skip


def test_a_full_table_loads_through_the_config_loader(tmp_path):
    register()
    cfg = config_mod.from_dict({"ctp": SIMNOW}, source="t.toml")
    ctp = cfg.edges["ctp"]
    assert ctp.md.fronts == ("tcp://182.254.243.31:30011",)
    inv = ctp.investors[0]
    assert inv.account_id == "000001" and inv.query_interval_s >= 1.0
    assert not ctp.orders.enabled and ctp.orders.dry_run  # off by default, dry run by default
    assert ctp.flow_dir.startswith("/")


@pytest.mark.parametrize(
    "table, message",
    [
        (
            {"md": {**SIMNOW["md"], "front": ["x"]}},
            "ctp.md.front: unknown key (did you mean 'fronts'?)",
        ),
        ({"md": {**SIMNOW["md"], "feed": "nope"}}, "ctp.md.feed: no [[market.feeds]] named 'nope'"),
        ({"md": {**SIMNOW["md"], "fronts": ["182.254.243.31:30011"]}}, "ctp.md.fronts[0]"),
        (
            {"investors": [{**SIMNOW["investors"][0], "pasword": "x"}]},
            "did you mean 'password_env'?",
        ),
        (
            {"investors": [{**SIMNOW["investors"][0], "broker_id": ""}]},
            "ctp.investors[0] (simnow).broker_id: missing",
        ),
        ({"investors": [{**SIMNOW["investors"][0], "query_interval_s": 0.2}]}, "query_interval_s"),
        ({"investors": SIMNOW["investors"] * 2}, "names must be unique"),
        ({"orders": {"enabled": True}}, "ctp.orders.enabled: order routing needs"),
        ({"md": {**SIMNOW["md"], "batch_ms": "fast"}}, "ctp.md.batch_ms: expected int"),
    ],
)
def test_errors_name_the_key(table, message):
    register()
    with pytest.raises(config_mod.ConfigError) as err:
        config_mod.from_dict({"ctp": table}, source="t.toml")
    assert message in str(err.value) and str(err.value).startswith("t.toml: ")


def test_credentials_from_env_then_secrets_file_and_never_in_repr(tmp_path, monkeypatch):
    cfg = parse(SIMNOW)
    inv = cfg.investors[0]
    secrets = tmp_path / "ctp.toml"
    secrets.write_text('[simnow]\npassword = "from-file"\nauth_code = "AC-file"\n')
    monkeypatch.delenv("FK_TEST_CTP_PW", raising=False)
    monkeypatch.delenv("FK_TEST_CTP_AC", raising=False)
    c = credentials(inv, str(secrets), "simnow")
    assert (c.password, c.auth_code) == ("from-file", "AC-file")
    monkeypatch.setenv("FK_TEST_CTP_PW", "from-env")
    c = credentials(inv, str(secrets), "simnow")
    assert (c.password, c.auth_code) == ("from-env", "AC-file")
    assert "from-env" not in repr(c) and "AC-file" not in repr(c) and "from-env" not in repr(cfg)
    with pytest.raises(CtpConfigError, match="ctp.secrets_file: .* not found"):
        credentials(inv, str(tmp_path / "missing.toml"), "simnow")


def test_the_example_config_loads():
    from gateways.backoffice.watch import register as register_backoffice

    register()
    register_backoffice()
    cfg = config_mod.load("examples/ctp.toml")
    ctp = cfg.edges["ctp"]
    assert ctp.md.feed == "ctp" and [i.name for i in ctp.investors] == ["simnow"]
    assert not ctp.orders.enabled
    assert cfg.edges["backoffice"].watch_dir == ""
