"""Who may decide, end to end on a real local Ray (issue 13 item 5).

Before: `fengkong approve ID --as risk.zhang` sent an unsigned request when zhang's secret lived
only in `approval.secrets_file`, and the Executor accepted it (zhang was "not signing"); the
console called the Executor unsigned as a trusted in-cluster caller. A real Executor with a
roster and a real secrets file: the CLI signs from the file, refuses (one line) a person with
no secret, and an unsigned request is refused; the console's decisions carry its voucher,
which the Executor checks. The decision requests name a proposal that does not exist, so the
answer shows how far a request got: UNKNOWN_PROPOSAL means it was authenticated.
"""

from __future__ import annotations

import json

import pytest
import ray

from actors.execution.settings import ExecutorSettings
from actors.executor import Executor
from app.cli import main
from app.console.system import ConsoleSystem
from tests.zmq_util import free_tcp_port

PREFIX = "auth13."
ROSTER = [
    {"name": "risk.zhang", "roles": ["risk_desk"]},  # secret in the file only
    {"name": "risk.wang", "roles": ["risk_desk"]},  # no secret anywhere
]


@pytest.fixture(scope="module")
def world(ray_local, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("auth")
    secrets = tmp / "secrets.toml"
    secrets.write_text('"risk.zhang" = "zhang-file-secret"\n"@console" = "console-key"\n')
    approval = {"users": ROSTER, "secrets_file": str(secrets),
                "console_key_env": "AUTH13_UNSET", "seal_key_env": "AUTH13_UNSET"}  # fmt: skip
    settings = ExecutorSettings(
        "tcp://127.0.0.1:17971", "tcp://127.0.0.1:17972", 1, name_prefix=PREFIX,
        approval=approval,
    )  # fmt: skip
    executor = Executor.options(name=f"{PREFIX}Executor").remote(settings)
    config = tmp / "fengkong.toml"
    users = "".join(f'[[approval.users]]\nname = "{u["name"]}"\nroles = ["risk_desk"]\n'
                    for u in ROSTER)  # fmt: skip
    config.write_text(f'[approval]\nsecrets_file = "{secrets}"\n{users}')
    yield executor, str(config)
    ray.kill(executor)


def _cli(capsys, *argv: str) -> tuple[int, dict | None, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    try:
        body = json.loads(out.out)
    except ValueError:
        body = None
    return code, body, out.err


def test_the_cli_signs_with_a_secret_from_the_secrets_file(world, capsys):
    _, config = world
    code, body, _ = _cli(capsys, "approve", "P-NONE", "--as", "risk.zhang", "--config", config,
                         "--prefix", PREFIX)  # fmt: skip
    assert code == 1 and "refused" not in body, body  # authenticated, then no such proposal
    assert body["results"][0]["refused"].startswith("UNKNOWN_PROPOSAL")


def test_the_cli_refuses_without_an_authenticated_person(world, capsys):
    _, config = world
    code, body, err = _cli(capsys, "approve", "P-NONE", "--as", "risk.wang", "--config", config,
                           "--prefix", PREFIX)  # fmt: skip
    assert code == 2 and body is None
    assert "no signing secret for risk.wang" in err and len(err.strip().splitlines()) == 1
    code, _, err = _cli(capsys, "reject", "P-NONE", "--config", config, "--prefix", PREFIX)
    assert code == 2 and "who decides? give --as NAME" in err and "Traceback" not in err
    # sent unsigned anyway (--demo): the Executor refuses it outside demo_open
    code, body, err = _cli(capsys, "approve", "P-NONE", "--as", "risk.wang", "--demo",
                           "--config", config, "--prefix", PREFIX)  # fmt: skip
    assert code == 1 and body["refused"] == "UNSIGNED_REQUEST" and "UNSIGNED" in err


def test_an_unsigned_in_cluster_approval_is_refused(world):
    executor, _ = world
    [result] = ray.get(executor.approve.remote(["P-NONE"], "risk.zhang"))
    assert result["refused"].startswith("UNSIGNED_REQUEST")


def test_a_console_decision_carries_the_consoles_voucher(world):
    console = ConsoleSystem(PREFIX, None, 1, [], console_key="console-key")
    out = console.decide("approve", ["P-NONE"], "", "risk.zhang", "", "req-c1", session="ab12cd")
    assert "refused" not in out and out["results"][0]["refused"].startswith("UNKNOWN_PROPOSAL")
    forged = ConsoleSystem(PREFIX, None, 1, [], console_key="not-the-key")
    out = forged.decide("approve", ["P-NONE"], "", "risk.zhang", "", "req-c2", session="ab12cd")
    assert out["refused"] == "BAD_SIGNATURE"
    out = console.decide("approve", ["P-NONE"], "", "risk.zhang", "", "req-c3")  # no session
    assert out["refused"] == "UNSIGNED_REQUEST"
    stats = ray.get(world[0].stats.remote())
    assert stats["refused"] >= 3


def test_a_console_token_decides_through_the_console_or_says_why_not(tmp_path, capsys):
    """`--token` goes to the console's API (which vouches for its person); a console that is
    not there is a one-line error, never a silent unsigned decision."""
    port = free_tcp_port()  # nothing listens there
    config = tmp_path / "fengkong.toml"
    config.write_text(f"[console]\nport = {port}\n")
    code, body, err = _cli(capsys, "approve", "P-NONE", "--token", "fk_not-a-token",
                           "--config", str(config), "--prefix", PREFIX)  # fmt: skip
    assert code == 2 and body is None
    assert f"console http://127.0.0.1:{port}/api/decisions: not reachable" in err
    assert len(err.strip().splitlines()) == 1
