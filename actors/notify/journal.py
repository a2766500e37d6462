"""The Notifier's view of the AuditLog actor: buffered, held, durable, and read back.

- `append`: attempts, outcomes, callbacks. Buffered and sent every `flush_s` in one actor call,
  because a Ray call costs far more than a record (thousands of sends make thousands of records).
  Losing the last few milliseconds of these in a crash costs at most a resend that the
  provider's idempotency key absorbs.
- `received`: returns once the AuditLog holds the records (it writes them within its batch_ms
  even if the Notifier dies now). Used around posts to providers without idempotency.
- `durable`: returns once the records are committed to SQLite (one `AuditLog.durable` call:
  the group commit that holds them). The outbox uses it for what must survive:
  accepted alerts, opened pages, queued notifications, acknowledgements.
Every call first takes what is buffered along, so the journal keeps the order things happened,
and numbers what it sends per sender (actors.common.JournalSender: `audit verify` names a gap).
The method names are the durabilities of `rules.notify.inputs` (APPEND, RECEIVED, DURABLE).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import ray

from actors.common import JournalSender


class Journal:
    def __init__(self, audit: Any = None, timeout_s: float = 30.0, flush_s: float = 0.02) -> None:
        self.audit = audit
        self.timeout_s = timeout_s
        self.flush_s = flush_s
        self._buffer: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._sender = JournalSender("Notifier")
        if audit is not None:
            threading.Thread(target=self._pump, name="notify-journal", daemon=True).start()

    @property
    def enabled(self) -> bool:
        return self.audit is not None

    def _pump(self) -> None:
        while True:
            time.sleep(self.flush_s)
            with self._lock:
                if not self._buffer:
                    continue
                batch, self._buffer = self._buffer, []
                self._sender.send(self.audit, batch)  # under the lock: keeps batches in order

    def append(self, records: list[dict[str, Any]]) -> None:
        if self.audit is not None and records:
            with self._lock:
                self._buffer.extend(records)

    def received(self, records: list[dict[str, Any]]) -> None:
        if self.audit is not None and records:
            with self._lock:
                batch, self._buffer = self._buffer + records, []
                ref = self._sender.send(self.audit, batch)
            ray.get(ref, timeout=self.timeout_s)

    def durable(self, records: list[dict[str, Any]]) -> None:
        if self.audit is not None:
            with self._lock:
                batch, self._buffer = self._buffer + records, []
                ref = self._sender.send(self.audit, batch, durable=True)
            ray.get(ref, timeout=self.timeout_s)

    def query(self, **kwargs: Any) -> list[dict[str, Any]]:
        if self.audit is None:
            return []
        self.durable([])
        return ray.get(self.audit.query.remote(**kwargs), timeout=self.timeout_s)
