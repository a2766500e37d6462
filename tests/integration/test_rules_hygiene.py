"""Alert hygiene on a running system: grouping (one notification listing every account of a
shock), inhibition (a liquidation-level alert mutes the same account's warning), silences
(`fengkong silence add/list/expire`, journaled, back after a Correlator restart), the repeat
interval (a flapping account is notified once) and deduplication (a retried batch is one
alert)."""

from __future__ import annotations

import time

import pytest
import ray

from app import cli
from infra.audit import AuditStore
from infra.specs import load_contract_table
from rules.model import RiskEvent
from tests.integration.harness import account_at_risk, start_harness
from tests.zmq_util import wait_until

RB, CU, HC, IRON = "rb2601", "cu2601", "hc2601", "i2601"
PRICES = {RB: 3000.0, CU: 80000.0, HC: 3500.0, IRON: 800.0}

RULES = """
[hygiene]
group_by = ["rule_id"]
group_wait_s = 0.3
group_interval_s = 1.0

[[inhibit]]
id = "liquidation-mutes-warning"
source = ["severity=critical"]
target = ["severity=warning"]
equal = ["key"]
duration_s = 600

[[rules]]
id = "h.warn"
threshold = 0.8
rearm = 0.75
repeat_s = 60

[[rules]]
id = "h.liq"
threshold = 1.0
rearm = 0.95
severity = "critical"
"""


@pytest.fixture(scope="module")
def world(ray_local, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rules_hygiene")
    rules = tmp / "rules.toml"
    rules.write_text(RULES)
    h = start_harness(tmp, PRICES, ["rb"], rules_files=[str(rules)])
    yield h
    h.stop()


def acct(account_id: str, instrument: str, risk: float) -> dict:
    return account_at_risk(
        account_id, instrument, "long", 10, PRICES[instrument], risk, load_contract_table()
    )


def journal_alerts(h, key: str) -> list[dict]:
    ray.get(h.system.audit.flush.remote())
    return [r for r in AuditStore(h.journal).query(kind="alert", key=key)]


def loaded(h, n: int) -> bool:
    return sum(ray.get(s.stats.remote())["accounts"] for s in h.system.shards) >= n


def cli_run(h, *argv: str) -> int:
    return cli.main([*argv, "--prefix", h.system.prefix])


def test_one_notification_lists_every_account_of_a_shock(world):
    group = [f"G{i}" for i in range(7)]
    world.send_accounts([acct(a, RB, 0.78) for a in group])
    assert wait_until(lambda: loaded(world, 7), 10)
    world.market.set(**{RB: PRICES[RB] * 0.99})  # every one crosses 80%, none 100%
    assert wait_until(
        lambda: any(all(a in m["body"] for a in group) for m in world.sink.messages("wecom")), 15
    )
    carrying = [m for m in world.sink.messages("wecom") if any(a in m["body"] for a in group)]
    assert len(carrying) == 1, [m["body"] for m in carrying]  # one message, the whole list
    ray.get(world.system.audit.flush.remote())
    grouped = AuditStore(world.journal).query(kind="alert.grouped")
    ours = [
        g
        for g in grouped
        if set(g["alert_ids"]) & {a["alert_id"] for k in group for a in journal_alerts(world, k)}
    ]
    assert len(ours) == 1 and ours[0]["size"] == 7 and ours[0]["key"] == "rule_id=h.warn"


def test_liquidation_alert_inhibits_the_accounts_warning(world):
    world.send_accounts([acct("I1", CU, 0.78)])
    assert wait_until(lambda: loaded(world, 8), 10)
    world.market.set(**{CU: PRICES[CU] * 0.97})  # past 80% and 100% in one step
    assert wait_until(
        lambda: {a["rule_id"] for a in journal_alerts(world, "I1")} == {"h.warn", "h.liq"}, 10
    )
    by_rule = {a["rule_id"]: a for a in journal_alerts(world, "I1")}
    assert by_rule["h.warn"]["suppressed"] == "INHIBITED"
    assert by_rule["h.warn"]["suppressed_by"].startswith("liquidation-mutes-warning by ")
    assert "suppressed" not in by_rule["h.liq"]
    assert wait_until(lambda: [m for m in world.sink.messages("wecom") if "I1" in m["body"]], 10)
    time.sleep(1.0)  # a muted warning would have been sent with it
    bodies = [m["body"] for m in world.sink.messages("wecom") if "I1" in m["body"]]
    assert len(bodies) == 1 and "critical" in bodies[0], bodies


def test_silence_add_list_expire_from_the_cli_and_journal(world, capsys):
    assert cli_run(world, "silence", "add", "key=S1", "rule=~h\\..*", "--comment", "client on the phone",
                   "--duration", "10m", "--as", "risk.li") == 0  # fmt: skip
    added = capsys.readouterr().out
    assert "risk.li" in added and "active" in added
    world.send_accounts([acct("S1", HC, 0.78), acct("S2", HC, 0.78)])
    assert wait_until(lambda: loaded(world, 10), 10)
    world.market.set(**{HC: PRICES[HC] * 0.99})
    assert wait_until(lambda: journal_alerts(world, "S1") and journal_alerts(world, "S2"), 10)
    [s1] = journal_alerts(world, "S1")
    assert s1["suppressed"] == "SILENCED"
    assert "suppressed" not in journal_alerts(world, "S2")[0]
    assert wait_until(lambda: [m for m in world.sink.messages("wecom") if "S2" in m["body"]], 10)
    assert not [m for m in world.sink.messages("wecom") if "S1" in m["body"]]

    assert cli_run(world, "silence", "list") == 0
    listed = capsys.readouterr().out
    assert s1["suppressed_by"] in listed and "client on the phone" in listed
    assert cli_run(world, "silence", "expire", s1["suppressed_by"][:6], "--as", "risk.wang") == 0
    capsys.readouterr()
    assert cli_run(world, "silence", "list") == 0
    assert "0 silences" in capsys.readouterr().out
    ray.get(world.system.audit.flush.remote())
    store = AuditStore(world.journal)
    [rec] = store.query(kind="silence.added")
    assert rec["created_by"] == "risk.li" and rec["matchers"] == ["key=S1", "rule=~h\\..*"]
    [gone] = store.query(kind="silence.expired")
    assert gone["by"] == "risk.wang"


def test_repeat_interval_mutes_a_flapping_account(world):
    world.send_accounts([acct("R1", IRON, 0.78)])
    assert wait_until(lambda: loaded(world, 11), 10)
    for level in (0.99, 1.01, 0.99):  # cross, re-arm (back under 75%), cross again
        world.market.set(**{IRON: PRICES[IRON] * level})
        time.sleep(0.6)
    assert wait_until(lambda: len(journal_alerts(world, "R1")) == 2, 10)
    first, second = journal_alerts(world, "R1")
    assert (first["alert_id"] != second["alert_id"]) and "suppressed" not in first
    assert second["suppressed"] == "REPEAT_INTERVAL"


def test_a_retried_batch_is_one_alert(world):
    corr = world.system.correlator
    ev = RiskEvent(
        "h.warn", "account.risk_degree", "DUP1", "warning", 0.9, 0.8, time.time(), time.time(), 1
    )
    before = ray.get(corr.stats.remote()).get("duplicates", 0)
    assert ray.get(corr.on_events.remote([ev])) == 1
    assert ray.get(corr.on_events.remote([ev])) == 0
    assert ray.get(corr.stats.remote())["duplicates"] == before + 1
    assert len(journal_alerts(world, "DUP1")) == 1


def test_silences_come_back_after_a_correlator_restart(world):
    corr = world.system.correlator
    assert (
        cli_run(world, "silence", "add", "key=ZZ", "--comment", "maintenance", "--as", "ops") == 0
    )
    assert ray.get(corr.stats.remote())["alerts"] > 0
    ray.kill(corr, no_restart=False)
    assert wait_until(lambda: _fresh(corr), 30)  # a new process: no alerts of its own yet
    assert any(s["matchers"] == ["key=ZZ"] for s in ray.get(corr.list_silences.remote()))


def _fresh(corr) -> bool:
    try:
        return ray.get(corr.stats.remote(), timeout=5).get("alerts", 0) == 0
    except Exception:
        return False
