"""The test's (and the cluster-200k bench's) side of the drill: the config `fengkong run` gets
on the edge host, the CLI from the edge, and reading what the drill (drill.py) and the journal
say. The drill's lines are JSON, one per phase or half second, in the edge's workdir."""

from __future__ import annotations

import json
import time
from pathlib import Path

from infra.audit import AuditStore
from rules.sharding import shard_of
from tests.cluster.netns import NetnsCluster

DRILL = Path(__file__).with_name("drill.py")
SINK_PORT, WECOM_KEY = 21790, "drill-robot-key"


def cli(c: NetnsCluster, *argv: str, timeout: float = 300):
    edge = c.hosts["edge"]
    cmd = [c.python, "-m", "app.cli", argv[0], "--config", str(edge.workdir / "fk.toml"),
           "--address", c.client_address, *argv[1:]]  # fmt: skip
    return edge.run(cmd, c.env, timeout)


def cli_until(c: NetnsCluster, *argv: str, deadline_s: float = 300):
    """The command again while Ray Client could not open the connection (its per-client
    server did not start in time on a loaded machine), until `deadline_s`; any other failure,
    or success, is the answer."""
    end = time.monotonic() + deadline_s
    while True:
        done = cli(c, *argv, timeout=max(60.0, end - time.monotonic()))
        lost = "Initialization failure from server" in done.stdout + done.stderr
        if done.returncode == 0 or not lost or time.monotonic() > end:
            return done


def write_config(
    c: NetnsCluster, n_accounts: int, n_shards: int, channel: bool = True, run: str = "journal"
) -> str:
    """fk.toml (and secrets.env) on the edge: edges started by `fengkong run`, only ports in
    the endpoints, the journal at one absolute path (a folder per `run`: each test of the
    session its own journal); returns the journal's path."""
    edge = c.hosts["edge"]
    journal = f"{c.root}/{run}/journal.sqlite"
    (edge.workdir / "secrets.env").write_text(f"FK_DRILL_WECOM_KEY={WECOM_KEY}\n")
    # the desk signs its decisions (issue 13: no unsigned approval outside the demo)
    Path(f"{c.root}/approval-secrets.toml").write_text('"drill-desk" = "drill-desk-secret"\n')
    # The drill's sink answers every post; a post it stored but answered after the channel's
    # timeout is resent (rules/notify/delivery.py `unanswered`: at least once on a lane with no
    # provider dedup and no failover), a true second page. A shock on 2 loaded cores once kept
    # an answer past 3 s (the one duplicate the page check saw); 30 s keeps that out of a drill
    # that asserts no page is sent twice.
    sink = f"""
[[channels]]
name = "desk"
type = "wecom"
base_url = "http://{edge.ip}:{SINK_PORT}"
key_env = "FK_DRILL_WECOM_KEY"
timeout = 30.0
"""
    (edge.workdir / "fk.toml").write_text(
        f"""
[cluster]
account_bus = true
market = "sim"
order_gateway = "sim"
secrets_file = "secrets.env"
[audit]
path = "{journal}"
[accounts]
shards = {n_shards}
endpoint = "tcp://*:21711"
snapshot_endpoint = "tcp://*:21712"
inbound_endpoint = "tcp://*:21713"
[orders]
endpoint = "tcp://*:21721"
reports_endpoint = "tcp://*:21722"
[[market.feeds]]
name = "sim"
endpoint = "tcp://*:21701"
[sim]
accounts = {n_accounts}
contracts = 10
auto_approve_as = ""
[approval]
secrets_file = "{c.root}/approval-secrets.toml"
[[approval.users]]
name = "drill-desk"
roles = ["risk_desk"]
[console]
host = "0.0.0.0"
public_url = "http://{c.hosts["head"].ip}:8000"
{sink if channel else ""}"""
    )
    return journal


def start_drill(c: NetnsCluster, n_accounts: int, n_shards: int) -> Path:
    edge = c.hosts["edge"]
    out = edge.workdir / "drill.jsonl"
    for old in (out, out.with_name(out.name + ".stop")):  # an earlier drill's of the session
        old.unlink(missing_ok=True)
    edge.popen([c.python, str(DRILL), c.client_address, "fengkong.", str(out),
                str(n_accounts), str(n_shards)], c.env, log="drill.log")  # fmt: skip
    return out


def lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def phase(path: Path, name: str) -> dict | None:
    return next((x for x in lines(path) if x["phase"] == name), None)


def all_back_after(path: Path, t: float, n_accounts: int) -> dict | None:
    """The first drill line after `t` in which every shard answered with every account."""
    return next((x for x in lines(path) if x["phase"] == "tick" and x["t"] > t
                 and None not in x["accounts"] and sum(x["accounts"]) == n_accounts), None)  # fmt: skip


def alerts_of(journal: str, shards: set[int] | None, after: float, n_shards: int) -> list[dict]:
    """Alert records of accounts held by `shards` (None: any), journaled after `after`."""
    if not Path(journal).exists():
        return []
    store = AuditStore(journal)
    try:
        return [
            r for r in store.query(kind="alert", since=after)
            if str(r["key"]).startswith("ACC")
            and (shards is None or shard_of(r["key"], n_shards) in shards)
        ]  # fmt: skip
    finally:
        store.close()
