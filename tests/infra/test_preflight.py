"""All validation before anything starts (issue 19): a missing rules file, a literal Twilio
secret for a real provider and a missing secrets file are one line each from the preflight —
the CLI reports them before Ray is started, never as an ActorDiedError."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.cli import main
from app.preflight import preflight, problems
from infra import config as config_mod

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fengkong.toml"


def _config(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "fengkong.toml"
    path.write_text(EXAMPLE.read_text(encoding="utf-8") + "\n" + extra, encoding="utf-8")
    return path


def test_the_example_and_the_default_config_pass():
    assert problems(config_mod.default()) == []
    assert problems(config_mod.load(EXAMPLE, deprecations=False)) == []


def test_missing_rules_file_and_literal_twilio_secret_are_one_line_each(tmp_path):
    text = EXAMPLE.read_text(encoding="utf-8")
    assert "rules_files" in text, "the example names its rules files"
    path = _config(
        tmp_path,
        '[[channels]]\nname = "sms"\ntype = "twilio_sms"\naccount_sid = "AC123"\n'
        'auth_token = "literal-secret"\nfrom = "+15005550006"\nto = ["+8613800138000"]\n',
    )
    cfg = config_mod.load(path, deprecations=False)
    cfg = type(cfg)(**{**cfg.__dict__, "rules_files": (*cfg.rules_files, "no/such/rules.toml")})
    found = problems(cfg)
    assert "rules_files: no/such/rules.toml: file not found" in found
    [sms] = [p for p in found if p.startswith("channels (sms)")]
    assert "literal" in sms and "environment variable" in sms and "literal-secret" not in sms
    with pytest.raises(config_mod.ConfigError) as err:
        preflight(cfg)
    assert "\n" not in str(err.value)


def test_the_cli_refuses_before_ray_starts(tmp_path, capsys):
    path = _config(
        tmp_path,
        '[[channels]]\nname = "sms"\ntype = "twilio_sms"\naccount_sid = "AC123"\n'
        'auth_token = "literal-secret"\nfrom = "+15005550006"\nto = ["+8613800138000"]\n',
    )
    import ray

    was = ray.is_initialized()
    assert main(["demo", "--config", str(path)]) == 2
    assert ray.is_initialized() == was  # refused before anything started
    err = capsys.readouterr().err.strip()
    assert err.startswith("config error:") and len(err.splitlines()) == 1
    assert "channels (sms)" in err
