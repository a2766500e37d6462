"""Issue 13 item 2's figure: durable journal throughput through the AuditLog actor. Several
senders (threads of this process, each numbering its records like an actor does) call
`AuditLog.durable` at once with batches of the shapes the system writes; every call returns only
after its commit (synchronous=FULL), so the figure is what the group commit sustains while
callers wait for the disk, not what a fire-and-forget queue swallows. `store_only_per_s` is the
same records appended straight to an AuditStore in this process, one commit per batch (the
ceiling the actor works under on this machine now); the ratio of the two is comparable across
machines and loads where the absolute figure is not."""

from __future__ import annotations

import os
import random
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import ray

from actors.audit_log import AuditLog, AuditLogSettings
from actors.common import JournalSender
from benchmarks.audit_1m import _alert_life
from benchmarks.common import ensure_ray
from infra.audit import AuditStore
from rules.execution.seal import seal

NAME = "journal-durable"
TARGETS = {"durable_per_s": (">", 30_000)}  # issue 13 item 2
DESCRIPTION = "durable appends from 8 concurrent senders, each returning after its commit"
SENDERS = 8
BATCH = 250
SEAL_KEY = "bench-seal-key"  # decision records carry the Executor's seal, as in the system


def _batches(n: int, seed: int) -> list[list[dict[str, Any]]]:
    rng = random.Random(seed)
    records: list[dict[str, Any]] = []
    t = time.time()
    i = 0
    while len(records) < n:
        records += _alert_life(rng, seed * 1_000_000 + i, t)
        i += 1
    seal(records, SEAL_KEY)
    return [records[k : k + BATCH] for k in range(0, n, BATCH)]


def run(quick: bool = False) -> dict[str, Any]:
    ensure_ray()
    per_sender = 10_000 if quick else 40_000
    tmp = Path(tempfile.mkdtemp(prefix="fk-journal-"))
    log = AuditLog.remote(
        AuditLogSettings(path=str(tmp / "journal.sqlite"), batch_ms=100, seal_key=SEAL_KEY)
    )
    ray.get(log.flush.remote())
    actor_pid = ray.get(log.pid.remote())
    work = [_batches(per_sender, s) for s in range(SENDERS)]
    waits: list[float] = []
    lock = threading.Lock()

    def sender(i: int) -> None:
        journal = JournalSender(f"Bench{i}")
        mine = []
        for batch in work[i]:
            t0 = time.perf_counter()
            ray.get(journal.send(log, batch, durable=True))
            mine.append((time.perf_counter() - t0) * 1000)
        with lock:
            waits.extend(mine)

    threads = [threading.Thread(target=sender, args=(i,)) for i in range(SENDERS)]
    cpu0 = _cpu_s(actor_pid)
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    actor_cpu = _cpu_s(actor_pid) - cpu0
    stats = ray.get(log.stats.remote())
    ray.kill(log)
    waits.sort()
    total = SENDERS * per_sender
    store = AuditStore(tmp / "direct.sqlite")
    direct = _batches(per_sender, SENDERS)
    t0 = time.perf_counter()
    for batch in direct:
        store.append(batch)
    store_only = per_sender / (time.perf_counter() - t0)
    store.close()
    return {
        "records": stats["appended"],
        "durable_per_s": round(total / elapsed),
        "store_only_per_s": round(store_only),
        "durable_vs_store": round(total / elapsed / store_only, 2),
        "calls": len(waits),
        "commits": stats["commits"],
        "records_per_commit": round(stats["appended"] / max(1, stats["commits"]), 1),
        "actor_cpu_share": round(actor_cpu / elapsed, 2),  # of one core: 1.0 = CPU-bound
        "call_ms_p50": round(waits[len(waits) // 2], 1),
        "call_ms_p99": round(waits[int(len(waits) * 0.99)], 1),
        "journal_mb": round((tmp / "journal.sqlite").stat().st_size / 1e6, 1),
    }


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of a local process, from /proc (0 where there is none)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
