"""Issue 14's scenario: 200,000 accounts over the 3-node namespace cluster (tests/cluster), run
by `fengkong run` from the edge host: how long until every account is on a shard, the account
state per node, shock → first alert end to end, and the recovery after the shard node w1 is
powered off mid-shock (alerts of the lost shards' accounts again, every account back).

Needs root and network namespaces (as `make cluster`); elsewhere it reports why it skipped.
`--quick` runs 20,000 accounts. Heavy: run it alone, never beside other work.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

NAME = "cluster-200k"
DESCRIPTION = "200,000 accounts on 6 shards over 3 namespace nodes: load, state, alerts, recovery"
N_SHARDS = 6
DEADLINE_S = 900.0


def _wait(predicate, timeout: float, interval: float = 0.5) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def run(quick: bool = False) -> dict[str, Any]:
    from tests.cluster import drill_host as d
    from tests.cluster.netns import available, build_standard

    why = available()
    if why:
        return {"skipped": why}
    n = 20_000 if quick else 200_000
    c = build_standard()
    figures: dict[str, Any] = {"accounts": n, "shards": N_SHARDS}
    try:
        journal = d.write_config(c, n, N_SHARDS, channel=False)
        t0 = time.time()
        done = d.cli_until(c, "run", "--detach")
        if done.returncode != 0:
            return {**figures, "error": (done.stdout + done.stderr)[-500:]}
        figures["run_s"] = round(time.time() - t0, 1)
        out = d.start_drill(c, n, N_SHARDS)
        if not _wait(lambda: d.phase(out, "ready") is not None, DEADLINE_S):
            return {**figures, "error": "the drill never saw every account"}
        ready = d.phase(out, "ready")
        figures["accounts_loaded"] = sum(a or 0 for a in ready["accounts"])
        figures["load_s"] = round(ready["t"] - t0, 1)
        where = {r["name"]: r["node_ip"] for r in ready["actors"]}
        per_node: dict[str, float] = defaultdict(float)
        for k, mb in enumerate(ready["memory_mb"]):
            if isinstance(mb, (int, float)):
                per_node[where.get(f"fengkong.AccountShard.{k}", "?")] += mb
        name_of = {h.ip: name for name, h in c.hosts.items()}
        figures["state_mb_per_node"] = {
            name_of.get(ip, ip): round(v, 1) for ip, v in per_node.items()
        }
        lost = {
            k
            for k in range(N_SHARDS)
            if where.get(f"fengkong.AccountShard.{k}") == c.hosts["w1"].ip
        }
        _wait(lambda: d.phase(out, "shocked") is not None, 120, 0.1)
        shocked = d.phase(out, "shocked")["t"]
        c.hosts["w1"].kill()
        killed = time.time()
        if _wait(lambda: bool(d.alerts_of(journal, None, shocked, N_SHARDS)), 120, 0.25):
            first = min(r["ts"] for r in d.alerts_of(journal, None, shocked, N_SHARDS))
            figures["shock_to_first_alert_s"] = round(first - shocked, 2)
        if lost and _wait(lambda: bool(d.alerts_of(journal, lost, killed, N_SHARDS)), 300, 0.25):
            first = min(r["ts"] for r in d.alerts_of(journal, lost, killed, N_SHARDS))
            figures["recovery_alerts_s"] = round(first - killed, 1)
        if _wait(lambda: d.all_back_after(out, killed, n) is not None, 600):
            figures["recovery_all_accounts_s"] = round(
                d.all_back_after(out, killed, n)["t"] - killed, 1
            )
        figures["shards_lost"] = len(lost)
        figures["alerts_journaled"] = len(d.alerts_of(journal, None, 0.0, N_SHARDS))
        (out.parent / "drill.jsonl.stop").write_text("")
        _wait(lambda: d.phase(out, "done") is not None, 180)
        d.cli_until(c, "stop")
    finally:
        c.teardown()
    return figures
