"""The anomaly model scored live in an AccountShard (issue 18 item 5): a small model trained
on ordinary order/cancel windows, named by a rules file, pushed to a real shard on a local Ray
with a real account bus (ZeroMQ) and Correlator. Every window the shard scores all its
accounts in one batch; the account that starts spoofing (120 orders, 118 cancelled, where
its neighbours send a handful) raises an alert carrying the score, the model's version and the
feature that stood out."""

from __future__ import annotations

import time

import numpy as np
import ray
import zmq

from actors.account_shard import AccountShard, AccountShardSettings
from actors.correlator import Correlator
from gateways.accounts.bus import AccountBus
from infra import rulesets
from infra.anomaly_models import save_model
from infra.codec import encode_records
from rules.anomaly import feature_matrix, fit
from tests.zmq_util import free_tcp_endpoint, wait_until

N = 20
WINDOW_S = 1.0


def train(path) -> str:
    rng = np.random.default_rng(3)
    rate = np.linspace(2, 6, N)
    raw = []
    for _ in range(40):
        orders = rng.poisson(rate).astype(float)
        raw.append({"orders": orders,
                    "cancels": rng.binomial(orders.astype(int), 0.3).astype(float),
                    "trades": np.zeros(N), "self_trades": np.zeros(N), "turnover": np.zeros(N),
                    "withdraw": np.zeros(N), "equity": np.full(N, 1e6)})  # fmt: skip
    own = {k: np.mean([w[k] for w in raw], axis=0) for k in ("orders", "cancels", "turnover")}
    return save_model(fit(np.vstack([feature_matrix(w, own) for w in raw]), 0.002), path)


def test_the_shard_scores_its_accounts_per_window_and_flags_the_spoofer(ray_local, tmp_path):
    version = train(tmp_path / "behaviour.json")
    rules_file = tmp_path / "anomaly.toml"
    rules_file.write_text('[[rules]]\nid = "account.behaviour"\nkind = "anomaly"\n'
                          f'model = "behaviour.json"\nthreshold = 1.5\nwindow_s = {WINDOW_S}\n')  # fmt: skip
    bundle = rulesets.load([rules_file]).to_bundle()
    corr = Correlator.remote()
    with AccountBus(*(free_tcp_endpoint() for _ in range(3))) as bus:
        settings = AccountShardSettings(0, 1, bus.pub_endpoint, bus.snapshot_endpoint, flush_ms=20)
        shard = AccountShard.remote(settings, rules=bundle, correlator=corr)
        sock = zmq.Context.instance().socket(zmq.PUSH)
        sock.setsockopt(zmq.LINGER, 2000)
        sock.connect(bus.inbound_endpoint)
        ids = [f"S{i:03d}" for i in range(N)]
        rng = np.random.default_rng(4)

        def flagged() -> list[dict]:
            return [a for a in ray.get(corr.alerts.remote(500), timeout=30)
                    if a["rule_id"] == "account.behaviour"]  # fmt: skip

        try:
            sock.send(encode_records("account_events", [
                {"type": "snapshot", "account_id": a, "pre_balance": 1e6, "positions": []}
                for a in ids]))  # fmt: skip
            deadline = time.monotonic() + 90
            window = 0
            while not flagged() and time.monotonic() < deadline:
                records = []
                for i, a in enumerate(ids):
                    spoof = a == "S007" and window >= 4
                    orders = 120 if spoof else int(rng.poisson(2 + 4 * i / N))
                    cancels = 118 if spoof else int(rng.binomial(orders, 0.3))
                    records += [
                        {
                            "type": "order",
                            "account_id": a,
                            "order_ref": f"{a}-{window}-{k}",
                            "instrument": "rb2601",
                            "ts": time.time(),
                        }
                        for k in range(orders)
                    ]
                    records += [{"type": "cancel", "account_id": a,
                                 "order_ref": f"{a}-{window}-{k}", "ts": time.time()}
                                for k in range(cancels)]  # fmt: skip
                sock.send(encode_records("account_events", records))
                window += 1
                # the next window: its first evaluation scores this one (a condition, no hope)
                end = (np.floor(time.time() / WINDOW_S) + 1) * WINDOW_S
                wait_until(lambda e=end: time.time() >= e + 0.05, timeout=5)
            alerts = flagged()
            assert alerts and {a["key"] for a in alerts} == {"S007"}, alerts
            ev = alerts[0]["attributes"]["evidence"]
            assert ev["model_version"] == version and ev["score"] > ev["threshold"]
            assert ev["feature"] and f"model {version}" in alerts[0]["title"]
        finally:
            sock.close()
            ray.kill(shard, no_restart=True)
            ray.kill(corr, no_restart=True)
