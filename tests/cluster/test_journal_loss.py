"""Losing the journal's node (issue 14 item 5): `fengkong run` from the edge on the 3-node
namespace cluster, a shock, and w2 — the only node labelled `fengkong_journal`, holding the
AuditLog with the Executor, the Notifier, the bus, the order gateway and the supervisor — is
powered off mid-shock. While it is down nothing is journaled and no order is sent; it is
powered on again with the same folders (its Ray temp dir, its var/, the journal file at the
same absolute path): the AuditLog reopens the same file (one chain, no fork: one
`system.started`, the chain whole across the outage), the bus is refilled, every account is on
a shard again, alerts made while the journal was away are journaled (none dropped), approved
actions become orders, and nothing journaled is lost or duplicated. The seconds are printed
and in docs/deploy.md."""

from __future__ import annotations

import re
import time
from collections import Counter

import pytest

from app.system_health import reachable
from infra.audit import AuditStore
from tests.cluster.drill_host import (
    SINK_PORT,
    WECOM_KEY,
    all_back_after,
    cli_until,
    lines,
    phase,
    start_drill,
    write_config,
)
from tests.zmq_util import wait_until

pytestmark = pytest.mark.cluster

N_ACCOUNTS, N_SHARDS = 1000, 2
OUTAGE_S = 5.0  # the scenario: how long the journal's node stays off once Ray saw it gone
DEADLINE_S = 120.0  # a functional deadline for each wait


def _last_seq(journal: str) -> int:
    store = AuditStore(journal)
    try:
        return store.last_seq
    finally:
        store.close()


def _hole(reason: str) -> tuple[str, int, int]:
    """(sender, first and last lost number) of a `verify` break "sender S: record(s) N[..M] sent but
    never journaled"."""
    found = re.match(r"sender (\S+): records? (\d+)(?:\.\.(\d+))?", reason)
    assert found, reason
    return found.group(1), int(found.group(2)), int(found.group(3) or found.group(2))


def _shard_unanswered(out, after: float, k: int) -> bool:
    """A drill line after `after` in which shard `k` did not answer (Ray lost it)."""
    return any(x["phase"] == "tick" and x["t"] > after and x["accounts"][k] is None
               for x in lines(out))  # fmt: skip


def test_losing_the_journal_node_stops_actions_and_resumes_on_the_same_journal(
    netns_cluster,
) -> None:
    c = netns_cluster
    edge = c.hosts["edge"]
    ips = {name: c.hosts[name].ip for name in ("head", "w1", "w2")}
    journal = write_config(c, N_ACCOUNTS, N_SHARDS, run="journal-loss")
    if not reachable(f"tcp://{edge.ip}:{SINK_PORT}"):  # the session's other drill may have one
        edge.popen([c.python, "-m", "gateways.sim.provider_sink", "--host", edge.ip,
                    "--port", str(SINK_PORT), "--wecom-key", WECOM_KEY,
                    "--rate-limit", "1000000"], c.env, log="sink.log")  # fmt: skip
        assert wait_until(lambda: reachable(f"tcp://{edge.ip}:{SINK_PORT}"), 60, interval=0.2)
    done = cli_until(c, "run", "--detach")
    revived = False
    try:
        assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
        out = start_drill(c, N_ACCOUNTS, N_SHARDS)
        assert wait_until(lambda: phase(out, "ready") is not None, 300, interval=0.5), (
            edge.workdir / "drill.log"
        ).read_text()[-3000:]
        ready = phase(out, "ready")
        where = {r["name"]: r["node_ip"] for r in ready["actors"]}
        assert where["fengkong.AuditLog"] == ips["w2"] and where["fengkong.Executor"] == ips["w2"]
        on_w2 = [k for k in range(N_SHARDS) if where[f"fengkong.AccountShard.{k}"] == ips["w2"]]
        assert on_w2, f"SPREAD left no shard on w2: {where}"

        assert wait_until(lambda: phase(out, "shocked") is not None, 60, interval=0.1)
        c.hosts["w2"].kill()  # power off the journal's node, mid-shock
        killed = time.time()
        print(f"killed w2 {killed - phase(out, 'shocked')['t']:.1f} s into the shock")
        assert wait_until(lambda: _shard_unanswered(out, killed, on_w2[0]), DEADLINE_S, 0.25)
        noticed = time.time()
        seq_down = _last_seq(journal)  # the AuditLog is gone: nothing can commit from here
        store = AuditStore(journal)
        try:
            orders_before = {r["ref"] for r in store.query(kind="order")}
        finally:
            store.close()
        time.sleep(OUTAGE_S)  # the outage itself (the scenario's length, not a wait for state)
        assert _last_seq(journal) == seq_down  # nothing journaled while its node is off

        c.revive("w2")  # the same temp dir, var/ and journal path: the node comes back
        revived, back_at = True, time.time()
        assert wait_until(lambda: _last_seq(journal) > seq_down, DEADLINE_S, 0.25)
        journal_back = time.time()
        print(f"w2 off {back_at - killed:.1f} s; the journal commits again "
              f"{journal_back - back_at:.1f} s after its node is back")  # fmt: skip
        assert wait_until(lambda: all_back_after(out, back_at, N_ACCOUNTS) is not None,
                          DEADLINE_S, 0.5), lines(out)[-3:]  # fmt: skip
        every = all_back_after(out, back_at, N_ACCOUNTS)
        print(f"every account on a shard {every['t'] - back_at:.1f} s after its node is back")

        (edge.workdir / "drill.jsonl.stop").write_text("")  # approve what is pending
        assert wait_until(lambda: phase(out, "done") is not None, 180, interval=0.5)
        final = phase(out, "done")
        approved = phase(out, "approved")
        print(f"approved {approved['n']}; gateway {final['gateway']}")
        assert final["gateway"].get("orders", 0) > 0, final  # actions resume
        assert final["gateway"].get("duplicates", 0) == 0, final
        status = cli_until(c, "status")
        assert status.returncode == 0, status.stdout + status.stderr
        print(status.stdout[-1500:])
    finally:
        if not revived:  # the cluster is whole again for whoever comes next
            c.revive("w2")
        stopped = cli_until(c, "stop")
    assert stopped.returncode == 0, (stopped.stdout + stopped.stderr)[-2000:]

    store = AuditStore(journal)
    try:
        breaks = store.verify()
        lost = [b for b in breaks if "never journaled" in b.reason]
        assert breaks == lost, breaks  # one chain across the outage: none deleted, edited, twice
        n_lost = 0
        for b in lost:  # handed over in the instant of the power-off, never committed
            sender, n, last = _hole(b.reason)
            n_lost += last - n + 1
            before = [r for r in store.query() if r.get("sender") == sender
                      and int(r.get("sender_seq", 0)) < n]  # fmt: skip
            assert before and before[-1]["ts"] < killed + 1.0, (b, before[-1:])
            print(f"lost at the power-off: {b.reason} (the one before: {before[-1]['kind']})")
        assert n_lost <= 10, lost  # at most the batch the AuditLog held at the power-off
        kinds = [r["kind"] for r in store.query(kind="system.*")]
        assert kinds.count("system.started") == 1 and kinds[-1] == "system.stopped", kinds
        after = store.query(after_seq=seq_down)
        assert after, "nothing journaled after the node came back"
        # Made while the journal was away, journaled once it was back: held, not dropped.
        held = [r for r in after if r["kind"] == "alert" and r["ts"] < journal_back]
        print(f"{len(held)} alerts made while the journal was away, journaled after it")
        orders = store.query(kind="order")
        assert not [r for r in orders if killed < r["ts"] < journal_back and
                    r["ref"] not in orders_before], "an order stamped while the journal was off"  # fmt: skip
        for kind in ("notification.delivered", "order"):
            refs = Counter(r["ref"] for r in store.query(kind=kind))
            assert not [r for r, n in refs.items() if n > 1], (kind, refs.most_common(3))
        assert len(orders) >= final["gateway"]["orders"]  # no order the journal does not hold
        refilled = store.query(kind="system.bus_refilled")
        print(f"bus refilled: {[r.get('accounts') for r in refilled]}; noticed "
              f"{noticed - killed:.1f} s after the kill")  # fmt: skip
    finally:
        store.close()
