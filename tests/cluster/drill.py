"""The operator's side of the cluster drill, run on the edge host through Ray Client (stdlib and
ray only): wait until every account is on a shard, shock every product, then report once per
half second what the shards hold and the correlator counted, until told to stop; then approve
what is pending as the risk desk and report the order gateway's figures. One JSON line each.

    python drill.py RAY_ADDRESS PREFIX OUT_FILE N_ACCOUNTS N_SHARDS
Stop: create OUT_FILE + ".stop". A call that fails (a node just died) reports null, never ends
the drill.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
import time
import uuid
from pathlib import Path

import ray

CALL_S = 3.0
DESK, DESK_SECRET = "drill-desk", "drill-desk-secret"  # the roster person of drill_host's config


def signed(ids: list[str]) -> dict:
    """A decision signed as the desk (rules.approval.request_digest's bytes: stdlib here)."""
    fields = {"action": "approve", "user": DESK, "ids": ids, "group": "", "reason": "drill",
              "ts": round(time.time(), 3), "request_id": uuid.uuid4().hex}  # fmt: skip
    body = "\n".join([fields["action"], DESK, ",".join(sorted(ids)), "", "drill",
                      f"{fields['ts']:.3f}", fields["request_id"]])  # fmt: skip
    sig = hmac.new(DESK_SECRET.encode(), body.encode(), hashlib.sha256).hexdigest()
    return {**fields, "signature": sig, "via": "cli"}


def main() -> None:
    address, prefix, out_path, n_accounts, n_shards = sys.argv[1:6]
    out, stop = Path(out_path), Path(out_path + ".stop")
    deadline = time.time() + 300
    while True:  # Ray Client's per-client server may not start in time on a loaded machine
        try:
            ray.init(address=address, namespace="fengkong", logging_level="ERROR")
            break
        except ConnectionError:
            if time.time() > deadline:
                raise

    def write(**line) -> None:
        with out.open("a") as f:
            f.write(json.dumps({"t": time.time(), **line}) + "\n")

    def ask(name: str, method: str, *args):
        try:
            return ray.get(
                getattr(ray.get_actor(prefix + name), method).remote(*args), timeout=CALL_S
            )
        except Exception as exc:  # restarting or gone: say so, keep going
            return {"error": f"{type(exc).__name__}"}

    def accounts() -> list:
        got = [ask(f"AccountShard.{k}", "stats") for k in range(int(n_shards))]
        return [g.get("accounts") if "error" not in g else None for g in got]

    deadline = time.time() + 900  # 200,000 accounts take minutes on a loaded machine
    while time.time() < deadline and sum(a or 0 for a in accounts()) < int(n_accounts):
        time.sleep(0.5)
    status = ask("Supervisor", "status")
    memory = [ask(f"AccountShard.{k}", "memory_mb") for k in range(int(n_shards))]
    write(phase="ready", accounts=accounts(), actors=status.get("actors", []), memory_mb=memory)
    products = ask("SimMarket", "products")
    write(phase="shocked", hit=len(ask("SimMarket", "shock", products, -0.12, 8.0)))
    while not stop.exists():
        corr = ask("Correlator", "stats")
        write(phase="tick", accounts=accounts(), alerts=corr.get("alerts"))
        time.sleep(0.5)
    pending = ask("Executor", "pending")
    ids = [p["proposal_id"] for p in pending] if isinstance(pending, list) else []
    approved = ask("Executor", "decide", signed(ids)) if ids else {"results": []}
    write(phase="approved", n=len(approved.get("results", [])), refused=approved.get("refused"))
    deadline = time.time() + 120
    gateway = {}
    while time.time() < deadline:
        gateway = ask("OrderGateway", "stats")
        execu = ask("Executor", "stats")
        if gateway.get("orders", 0) > 0 and not execu.get("states", {}).get("executing"):
            break
        time.sleep(0.5)
    write(phase="done", gateway=gateway, executor=ask("Executor", "stats"))


if __name__ == "__main__":
    main()
