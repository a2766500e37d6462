"""Decision records prove themselves (issue 13 item 5): `audit verify` reports a decision record
that does not match a signed request or lacks the Executor's seal.

Before: a decision record written into the journal by anyone (`audit.durable.remote([forged])`)
passed `audit verify`. The records here are made by the real execution machine (the pure World,
signing as each person), sealed as the Executor seals them and written to a real SQLite journal;
the secrets come from a real secrets file (one lookup: env or file alike).
"""

from __future__ import annotations

from pathlib import Path

from app.cli import main
from infra.approval_keys import console_key, person_secret, seal_key
from infra.audit import AuditStore
from infra.audit_decisions import check_decisions
from rules.execution.messages import ProposalsSubmitted
from rules.execution.seal import SEAL, seal, unsealed
from rules.model import ActionProposal
from tests.rules.execution_world import World, view

SEAL_KEY = "seal-key-of-this-deployment"


def _approval(tmp: Path, world: World) -> dict:
    secrets = tmp / "secrets.toml"
    lines = [f'"{name}" = "{secret}"' for name, secret in world.secrets.items()]
    secrets.write_text("\n".join([*lines, f'"@seal" = "{SEAL_KEY}"', '"@console" = "ck"']) + "\n")
    return {
        "users": [{"name": "zhang", "roles": ["risk_desk"]},
                  {"name": "wang", "roles": ["risk_desk"]}],
        "secrets_file": str(secrets), "seal_key_env": "H13B_UNSET_SEAL",
        "console_key_env": "H13B_UNSET_CONSOLE",
    }  # fmt: skip


def _decided_world() -> World:
    w = World({"users": [{"name": "zhang", "roles": ["risk_desk"]},
                         {"name": "wang", "roles": ["risk_desk"]}]})  # fmt: skip
    w.views["A1"] = view("A1", 20, 60_000)
    p = ActionProposal("P-A1", "alert-1", "A1", "reduce", 0.8, w.now)
    w.run(ProposalsSubmitted((p,), "system", {"A1": w.views["A1"]}))
    out = w.decide("approve", ["P-A1"], "zhang", reason="shock")
    assert "refused" not in out["results"][0], out
    return w


def test_secrets_come_from_env_or_file_in_one_lookup(tmp_path, monkeypatch):
    w = _decided_world()
    approval = _approval(tmp_path, w)
    # zhang has no secret_env: before issue 13 the Executor treated him as not signing
    assert person_secret(approval, "zhang") == w.secrets["zhang"]
    monkeypatch.setenv("H13B_ZHANG", "from-env")
    env_first = {**approval, "users": [{"name": "zhang", "secret_env": "H13B_ZHANG"}]}
    assert person_secret(env_first, "zhang") == "from-env"
    assert person_secret(approval, "@seal") is None, "a deployment key is never a person's"
    assert seal_key(approval) == SEAL_KEY and console_key(approval) == "ck"
    assert seal_key({}, draw=True) and seal_key({}) is None


def test_sealed_signed_decisions_verify_and_a_forged_one_is_reported(tmp_path):
    w = _decided_world()
    approval = _approval(tmp_path, w)
    records = [dict(r) for r in w.journal]
    seal(records, SEAL_KEY)
    [decision] = [r for r in records if r["kind"] == "decision"]
    assert decision[SEAL] and unsealed(decision, SEAL_KEY) is None
    store = AuditStore(tmp_path / "journal.sqlite")
    store.append(records)
    good = check_decisions(store.query(kind="decision"), approval)
    assert good.checked == 1 and good.breaks == [] and good.notes == []

    # what an attacker could append before: a decision with a made-up signature and seal,
    # and the same decision with its reason changed after it was signed and sealed
    forged = {**decision, "ref": "P-FORGED", "user": "wang", "request_id": "evil-1",
              "auth": {**decision["auth"], "signature": "ab" * 32}, SEAL: "cd" * 32}  # fmt: skip
    altered = {**decision, "reason": "approved by someone else"}
    store.append([forged, altered])
    bad = check_decisions(store.query(kind="decision"), approval)
    assert bad.checked == 3 and len(bad.breaks) == 2
    assert all("FORGED_DECISION" in why for _, why in bad.breaks)
    # without the seal key the signatures alone still catch them
    no_seal = {**approval, "seal_key_env": "H13B_UNSET_SEAL"}
    (tmp_path / "secrets.toml").write_text(
        "\n".join(f'"{n}" = "{s}"' for n, s in w.secrets.items()) + "\n"
    )
    by_signature = check_decisions(store.query(kind="decision"), no_seal)
    assert [seq for seq, _ in by_signature.breaks] == [
        r["seq"] for r in store.query(kind="decision")
    ][1:]
    assert any("seals not checked" in n for n in by_signature.notes)


def test_audit_verify_on_the_command_line_reports_the_forged_record(tmp_path, capsys):
    w = _decided_world()
    approval = _approval(tmp_path, w)
    records = [dict(r) for r in w.journal]
    seal(records, SEAL_KEY)
    store = AuditStore(tmp_path / "journal.sqlite")
    store.append(records)
    config = tmp_path / "fengkong.toml"
    config.write_text(
        f'[approval]\nsecrets_file = "{approval["secrets_file"]}"\n'
        'seal_key_env = "H13B_UNSET_SEAL"\n'
        '[[approval.users]]\nname = "zhang"\nroles = ["risk_desk"]\n'
    )
    journal = str(tmp_path / "journal.sqlite")
    assert main(["audit", "verify", "--journal", journal, "--config", str(config)]) == 0
    assert "1 decision records, 0 not matching a signed request" in capsys.readouterr().out
    [decision] = [r for r in records if r["kind"] == "decision"]
    store.append([{**decision, "ref": "P-X", "request_id": "evil-2", SEAL: "00" * 32}])
    assert main(["audit", "verify", "--journal", journal, "--config", str(config)]) == 1
    out = capsys.readouterr().out
    assert "FORGED at seq" in out and "was not written by the Executor" in out
    assert "chain intact" in out, "the chain alone cannot see it: the forged record is chained"
