"""`fengkong people …` on a real store file: a password from FENGKONG_PASSWORD, a token, a list."""

from app.cli import main
from app.console.store import ConsoleStore


def test_people_add_token_list_and_refusals(tmp_path, monkeypatch, capsys):
    store = str(tmp_path / "console.sqlite")
    monkeypatch.setenv("FENGKONG_PASSWORD", "a-long-password")
    assert main(["people", "add", "wang", "--role", "approver", "--store", store]) == 0
    assert "argon2" in capsys.readouterr().out
    assert ConsoleStore(store).check_password("wang", "a-long-password").role == "approver"
    assert main(["people", "token", "wang", "--store", store]) == 0
    token = capsys.readouterr().out.strip()
    assert ConsoleStore(store).token_person(token)[0].name == "wang"
    assert main(["people", "list", "--store", store]) == 0
    assert "approver" in capsys.readouterr().out
    assert main(["people", "add", "li", "--store", store]) == 2  # no role and not on the roster
    assert "--role is needed" in capsys.readouterr().err
    monkeypatch.setenv("FENGKONG_PASSWORD", "short")
    assert main(["people", "add", "li", "--role", "viewer", "--store", store]) == 2
