"""What every actor shares: default options, naming and the bounded fire-and-forget sender."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import ray

from infra.audit_encode import preencode
from infra.journal_numbers import stamp

# Actors hold state and wait on sockets; they reserve no CPU, so a 2-core machine places them all.
ACTOR_OPTIONS: dict[str, Any] = {"num_cpus": 0, "max_restarts": 5, "max_task_retries": 3}


def actor_name(prefix: str, role: str, key: str = "") -> str:
    """Names as the Ray dashboard lists them: `fengkong.AccountShard.3`."""
    base = f"{prefix}{role}"
    return f"{base}.{key}" if key else base


class BoundedSender:
    """At most `max_in_flight` calls to one peer; a caller that finds it busy keeps its data.

    This is the backpressure of the design: when a peer is slow, the sender's next batch
    coalesces instead of queueing calls without bound.
    """

    def __init__(self, max_in_flight: int = 1) -> None:
        self.max_in_flight = max_in_flight
        self._refs: list[ray.ObjectRef] = []
        self._lock = threading.Lock()
        self.sent = 0
        self.errors = 0
        self.last_error = ""

    def busy(self) -> bool:
        with self._lock:
            self._reap()
            return len(self._refs) >= self.max_in_flight

    def _reap(self) -> None:
        if not self._refs:
            return
        ready, self._refs = ray.wait(self._refs, num_returns=len(self._refs), timeout=0)
        for ref in ready:
            try:
                ray.get(ref)
            except Exception as exc:  # the peer failed this call; count it, keep going
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"[:500]

    def send(self, ref: ray.ObjectRef) -> None:
        with self._lock:
            self._refs.append(ref)
            self.sent += 1

    def wait_free(self, timeout: float) -> None:
        """Block until a call in flight is answered (or `timeout`): a caller holding data
        sends it the moment the peer is free, without polling on a timer."""
        with self._lock:
            refs = list(self._refs)
        if len(refs) >= self.max_in_flight:
            ray.wait(refs, num_returns=len(refs) - self.max_in_flight + 1, timeout=timeout)

    def drain(self, timeout: float = 10.0) -> None:
        with self._lock:
            refs, self._refs = self._refs, []
        if refs:
            ray.wait(refs, num_returns=len(refs), timeout=timeout)


JOURNAL_FIELDS = ("kind", "actor", "key", "ref")


def entry(
    kind: str, actor: str, key: str, ref: str, payload: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    """One journal record. A payload field that clashes with a journal column keeps its value
    under `<kind>_<field>` (a proposal's action kind becomes `proposal_kind`)."""
    body = {**(payload or {}), **extra}
    for name in JOURNAL_FIELDS:
        if name in body and body[name] != locals()[name]:
            body[f"{kind}_{name}"] = body.pop(name)
        body.pop(name, None)
    return {**body, "kind": kind, "actor": actor, "key": key, "ref": ref}


class JournalSender:
    """Numbers one sender's journal records 1, 2, 3… (`sender`, `sender_seq`; infra.audit.stamp)
    and submits them in the same step, so `audit verify` can name any record that left this
    process but never reached the file. The name is new per process (`Role:xxxxxxxx`): a
    restarted actor counts from 1 under a name of its own, and what its predecessor had not
    yet handed over is not claimed as sent.

    It also encodes them (infra.audit_encode.preencode: the payload's JSON, its non-finite
    numbers named, an unserializable record turned into its quarantine record), so the one
    AuditLog only checks, chains and commits (issue 13 item 2: it was CPU-bound on one core,
    and every sender has a core's share of its own). Decision records travel as they are."""

    def __init__(self, role: str) -> None:
        self.sender = f"{role}:{uuid.uuid4().hex[:8]}"
        self.last = 0
        self._lock = threading.Lock()

    def send(self, audit: Any, records: list[dict[str, Any]], durable: bool = False) -> Any:
        """`audit.append` (or `durable`) of the numbered records; returns the call's ref. The
        records are numbered in place (a resend of the same list keeps its numbers)."""
        with self._lock:  # numbered and submitted in one step: number n+1 never leaves first
            self.last = stamp(records, self.sender, self.last)
            now = time.time()
            wire = [preencode(r, now) for r in records]
            return (audit.durable if durable else audit.append).remote(wire)
