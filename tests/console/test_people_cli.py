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


def test_login_hint_gives_the_demo_two_people_who_can_log_in_and_names_a_roster(tmp_path):
    import re

    from app.console.people_cli import login_hint
    from infra import config

    store = str(tmp_path / "console.sqlite")
    cfg = config.from_dict({"console": {"store_path": store}})
    hint = login_hint(cfg, demo=True)
    found = dict(re.findall(r"(demo-[a-z]+) / (\S+) \(", hint))
    assert set(found) == {"demo-risk", "demo-approver"}, hint
    s = ConsoleStore(store)
    assert s.check_password("demo-approver", found["demo-approver"]).role == "approver"
    assert s.check_password("demo-risk", found["demo-risk"]).role == "risk_officer"
    assert found != dict(re.findall(r"(demo-[a-z]+) / (\S+) \(", login_hint(cfg, demo=True)))
    # a deployment: no passwords made up, the people who can log in are named
    plain = login_hint(cfg)
    assert plain.startswith("log in as one of: ") and "demo-approver" in plain
    assert "/" not in plain.split("(")[0]  # no password in it
    empty = config.from_dict({"console": {"store_path": str(tmp_path / "none.sqlite")}})
    assert "nobody can log in yet" in login_hint(empty)
