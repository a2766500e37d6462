"""Shared machinery for the end-to-end benchmarks: a rate-controlled tick publisher and a run
of the real system (local Ray, ZeroMQ, account bus, shards, correlator, notifier, journal)."""

from __future__ import annotations

import dataclasses
import os
import tempfile
import threading
import time
from typing import Any

import numpy as np
import ray
import zmq

from app.demo import sink_channels
from app.supervisor import start_system, stop_system
from gateways.accounts.bus import AccountBus
from gateways.sim.accounts import SimAccountSource
from gateways.sim.exchange import main_instruments
from gateways.sim.provider_sink import ProviderSink
from infra import config
from infra.codec import encode_ticks
from infra.specs import load_contract_table
from rules.contracts import limit_prices
from rules.model import TickBatch
from tests.zmq_util import free_tcp_endpoint


class LoadPublisher:
    """Publishes `rate` ticks/s as columnar frames every `batch_ms`, many ticks per contract.

    Prices follow a random walk; `shock(products, pct)` moves them (clamped to the limits) so
    rules fire, and `shock` again the other way re-arms them.
    """

    def __init__(
        self,
        endpoint: str,
        instruments: list[str],
        table: Any,
        rate: float,
        batch_ms: int = 20,
        seed: int = 1,
    ) -> None:
        self.instruments = instruments
        specs = [table.spec(i) for i in instruments]
        self.products = np.array([s.product for s in specs])
        self.tick = np.array([s.tick_size for s in specs])
        self.pre = np.array([s.reference_price for s in specs])
        self.upper, self.lower = limit_prices(
            self.pre, np.array([s.limit_rate for s in specs]), self.tick
        )
        self.level = self.pre.copy()
        self.rate = rate
        self.batch_s = batch_ms / 1000
        self.rng = np.random.default_rng(seed)
        self.sock = zmq.Context.instance().socket(zmq.PUB)
        self.sock.setsockopt(zmq.SNDHWM, 10_000)
        self.sock.bind(endpoint)
        self.sent = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def prices(self) -> dict[str, float]:
        return dict(zip(self.instruments, self.level.tolist(), strict=True))

    def shock(self, products: list[str], pct: float) -> None:
        with self._lock:
            hit = np.isin(self.products, products)
            self.level[hit] = np.clip(self.level[hit] * (1 + pct), self.lower[hit], self.upper[hit])

    def start(self) -> LoadPublisher:
        self._thread.start()
        return self

    def _run(self) -> None:
        n_contracts = len(self.instruments)
        per_batch = max(1, int(self.rate * self.batch_s))
        next_t = time.perf_counter()
        while not self._stop.is_set():
            idx = self.rng.integers(0, n_contracts, per_batch).astype(np.uint32)
            with self._lock:
                noise = self.rng.normal(0, 0.0002, per_batch)
                last = np.clip(self.level[idx] * (1 + noise), self.lower[idx], self.upper[idx])
            last = np.round(last / self.tick[idx]) * self.tick[idx]
            now = time.time()
            batch = TickBatch(
                self.instruments,
                idx,
                last,
                np.zeros(per_batch),
                np.zeros(per_batch),
                last,
                last,
                np.full(per_batch, now),
                self.upper[idx],
                self.lower[idx],
                self.pre[idx],
                sent_ts=now,
            )
            self.sock.send_multipart([b"T", encode_ticks(batch)])
            self.sent += per_batch
            next_t += self.batch_s
            delay = next_t - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            else:
                next_t = time.perf_counter()  # we are behind: do not try to catch up in a burst

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        self.sock.close(linger=0)


def ensure_ray() -> None:
    if not ray.is_initialized():
        ray.init(
            include_dashboard=False,
            namespace="fengkong-bench",
            log_to_driver=False,
            configure_logging=False,
        )


def run_loop(
    accounts: int,
    contracts: int,
    positions: int,
    rate: float,
    duration_s: float,
    shards: int = 2,
    shock_products: tuple[str, ...] = ("rb", "hc", "i", "j", "jm", "cu"),
    shock_every_s: float = 3.0,
    extra_rules: int = 0,
) -> dict[str, Any]:
    """Run the real system for `duration_s` under load; return its figures."""
    ensure_ray()
    table = load_contract_table()
    instruments = main_instruments(table, contracts)
    tmp = tempfile.mkdtemp(prefix="fengkong-bench-")
    ep = {k: free_tcp_endpoint() for k in ("market", "pub", "snap", "inbound", "orders", "reports")}
    rules = [
        {
            "id": "account.risk_degree.warn",
            "metric": "risk_degree",
            "op": ">",
            "threshold": 0.8,
            "rearm": 0.75,
            "severity": "warning",
        }
    ]
    rules += [
        {
            "id": f"extra.{i}",
            "metric": "risk_degree",
            "op": ">",
            "threshold": 5.0 + i,
            "rearm": 4.9 + i,
            "severity": "info",
        }
        for i in range(extra_rules)
    ]
    cfg = config.from_dict(
        {
            # The account path is measured here; market rules have their own scenario (market-1m)
            # and the load's random walk would make them fire on noise.
            "market": {
                "flush_ms": 20,
                "feeds": [{"name": "load", "endpoint": ep["market"]}],
                "rules": [],
            },
            "accounts": {
                "shards": shards,
                "endpoint": ep["pub"],
                "snapshot_endpoint": ep["snap"],
                "inbound_endpoint": ep["inbound"],
                "flush_ms": 100,
            },
            "orders": {"endpoint": ep["orders"], "reports_endpoint": ep["reports"]},
            "books": {"commodities": ["rb", "cu"]},
            "audit": {"path": os.path.join(tmp, "journal.sqlite"), "batch_ms": 200},
            "rules": rules,
            "console": {"enabled": False},  # the loop is measured, not the Serve application
        },
        source="<bench>",
    )
    sink = ProviderSink(
        port=0,
        twilio_account_sid=cfg.sink.twilio_account_sid,
        twilio_auth_token=cfg.sink.twilio_auth_token,
        wecom_keys=(cfg.sink.wecom_key,),
        wecom_rate_limit=1_000_000,
    )
    cfg = dataclasses.replace(cfg, channels=sink_channels(sink.start(), cfg))
    publisher = LoadPublisher(ep["market"], instruments, table, rate)
    bus = AccountBus(ep["inbound"], ep["pub"], ep["snap"]).start()
    t0 = time.time()
    source = SimAccountSource(
        ep["inbound"],
        instruments,
        table,
        publisher.prices(),
        n_accounts=accounts,
        positions_per_account=positions,
    )
    population_s = time.time() - t0
    system = start_system(cfg, prefix="bench.")
    try:
        source.publish_snapshots()
        deadline = time.time() + 120
        while time.time() < deadline:
            loaded = sum(ray.get(s.stats.remote())["accounts"] for s in system.shards)
            if loaded >= accounts:
                break
            time.sleep(0.2)
        load_s = time.time() - t0
        publisher.start()
        time.sleep(2.0)  # warm up: first prices, first marks
        ray.get(system.correlator.reset_latency.remote())
        base = _figures(system)
        started = time.time()
        down = True
        next_shock = started + 1.0
        while time.time() - started < duration_s:
            if time.time() >= next_shock:
                publisher.shock(list(shock_products), -0.04 if down else 0.0417)
                down = not down
                next_shock += shock_every_s
            time.sleep(0.05)
        elapsed = time.time() - started
        end = _figures(system)
        lat = np.array(ray.get(system.correlator.latencies_ms.remote()))
        marks = end["marks"] - base["marks"]
        return {
            "accounts": accounts,
            "contracts": contracts,
            "positions": int(end["positions"]),
            "shards": shards,
            "rules": len(rules),
            "offered_ticks_per_s": rate,
            "ticks_per_s": round((end["ticks"] - base["ticks"]) / elapsed),
            "rejected_ticks": end["rejected"],
            "remark_hz": round(marks / elapsed / shards, 1),
            "accounts_marked_per_s": round(
                (end["accounts_marked"] - base["accounts_marked"]) / elapsed
            ),
            "mark_ms_last": round(end["last_mark_ms"], 2),
            "alerts": int(end["alerts"]),
            "tick_to_alert_p50_ms": round(float(np.percentile(lat, 50)), 1) if lat.size else None,
            "tick_to_alert_p99_ms": round(float(np.percentile(lat, 99)), 1) if lat.size else None,
            "stages_ms": {
                k: end["corr"].get(k)
                for k in ("data_to_rule_ms", "rule_to_correlator_ms", "batch_ms")
            },
            "account_state_mb": round(
                sum(ray.get([s.memory_mb.remote() for s in system.shards])), 1
            ),
            "population_s": round(population_s, 1),
            "load_s": round(load_s, 1),
        }
    finally:
        publisher.stop()
        stop_system(system)
        bus.stop()
        sink.stop()
        source.stop()


def _figures(system: Any) -> dict[str, float]:
    feeds = ray.get([f.stats.remote() for f in system.feeds])
    shards = ray.get([s.stats.remote() for s in system.shards])
    corr = ray.get(system.correlator.stats.remote())
    return {
        "ticks": sum(f.get("ticks", 0) for f in feeds),
        "rejected": sum(v for f in feeds for k, v in f.items() if k.startswith("rejected_")),
        "marks": sum(s.get("marks", 0) for s in shards),
        "accounts_marked": sum(s.get("accounts_marked", 0) for s in shards),
        "positions": sum(s.get("positions", 0) for s in shards),
        "last_mark_ms": max(s.get("last_mark_ms", 0.0) for s in shards),
        "alerts": corr.get("alerts", 0),
        "corr": corr,
    }
