"""What a restarted Correlator owes the Notifier, derived from the journal alone.

The group stage holds alerts in memory for up to `group_wait_s` / `group_interval_s`; a crash
would drop them (the shards' hysteresis never raises the same crossing again). Every alert is
journaled (`alert`) when admitted and every batch (`alert.grouped`, durably) before it is handed
to the Notifier, which journals `notification.accepted` per alert it takes on. So after a crash:

- an unsuppressed `alert` in no `alert.grouped` record was still pending: it goes back into its
  group, keeping the group's history (notifications sent, members) so timing and sequence carry on;
- an `alert.grouped` batch with an alert the Notifier never accepted was in flight: it is sent
  again exactly as it was (same group id, same page id), which the Notifier deduplicates if the
  first send did land.

Pure: records in, alerts and batches out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rules.engine.hygiene import Batch, Pipeline
from rules.model import Alert

_ALERT_FIELDS = tuple(f.name for f in dataclasses.fields(Alert))
_FLOATS = ("value", "threshold", "created_ts", "ingress_ts")


def alert_from_record(rec: Mapping[str, Any]) -> Alert:
    """The Alert a journaled `alert` record carries (journal columns and flags dropped)."""
    body = {name: rec[name] for name in _ALERT_FIELDS if name in rec}
    for name in _FLOATS:
        if name in body:
            body[name] = float(body[name])  # "nan" is journaled as a string
    body["attributes"] = dict(body.get("attributes") or {})
    return Alert(**body)


@dataclass
class GroupHistory:
    """A group's notifications before the crash."""

    sequence: int = 0  # batches sent
    members: int = 0  # alerts in those batches
    last_flush: float = 0.0


@dataclass
class Resume:
    seen: set[str] = field(default_factory=set)  # every journaled alert id (dedup memory)
    pending: list[Alert] = field(default_factory=list)  # back into their groups
    unsent: list[tuple[Mapping[str, Any], list[Alert]]] = field(default_factory=list)
    history: dict[str, GroupHistory] = field(default_factory=dict)  # by group key


def resume(
    alerts: Iterable[Mapping[str, Any]],
    grouped: Iterable[Mapping[str, Any]],
    accepted_ids: Iterable[str],
) -> Resume:
    """Split journaled alerts into pending ones and in-flight batches (see module doc)."""
    out = Resume()
    by_id: dict[str, Alert] = {}
    passed: list[str] = []
    for rec in alerts:
        a = alert_from_record(rec)
        out.seen.add(a.alert_id)
        if a.alert_id in by_id:
            continue
        by_id[a.alert_id] = a
        if not rec.get("suppressed"):
            passed.append(a.alert_id)
    accepted = set(accepted_ids)
    handed: set[str] = set()
    for rec in grouped:
        ids = [str(i) for i in rec.get("alert_ids", ())]
        handed.update(ids)
        out.seen.update(ids)  # handed over: seen, even if its `alert` record was lost
        h = out.history.setdefault(str(rec["key"]), GroupHistory())
        h.sequence = max(h.sequence, int(rec.get("sequence", 0)))
        h.members = max(h.members, int(rec.get("members", 0)))
        h.last_flush = max(h.last_flush, float(rec.get("ts", 0.0)))
        if any(i not in accepted for i in ids) and all(i in by_id for i in ids):
            out.unsent.append((rec, [by_id[i] for i in ids]))
    out.pending = [by_id[i] for i in passed if i not in handed]
    return out


def batch_of(rec: Mapping[str, Any], members: list[Alert]) -> Batch:
    """The batch an `alert.grouped` record describes, as it was first sent."""
    return Batch(
        str(rec["key"]), str(rec["ref"]), tuple(members), int(rec["members"]),
        int(rec["sequence"]), bool(rec.get("digest", False)),
    )  # fmt: skip


def grouped_alerts(batch: Batch, keys_shown: int) -> list[Alert]:
    """The batch's alerts, each carrying `attributes["group"]` for the Notifier."""
    keys = [a.key for a in batch.alerts]
    info = {
        "id": batch.group_id,
        "key": batch.group_key,
        "size": len(batch.alerts),
        "members": batch.members,
        "sequence": batch.sequence,
        "digest": batch.digest,  # the hygiene's decision: one notification for the batch
        "keys": keys[:keys_shown],
    }
    return [
        dataclasses.replace(a, attributes={**a.attributes, "group": info}) for a in batch.alerts
    ]


def restore(
    pipeline: Pipeline,
    found: Resume,
    labels_of: Callable[[Alert], dict[str, str]],
    keys_shown: int,
) -> list[list[Alert]]:
    """Put what `resume` found back into a fresh pipeline (dedup memory, pending groups with
    their history); returns the in-flight batches to send again, as first sent."""
    for aid in found.seen:
        pipeline.dedup.seen[aid] = None
    by_key: dict[str, list[Alert]] = {}
    for a in found.pending:
        by_key.setdefault(pipeline.group.key_of(labels_of(a)), []).append(a)
    for key in set(by_key) | set(found.history):
        h = found.history.get(key, GroupHistory())
        pipeline.group.restore(key, by_key.get(key, []), h.sequence, h.members, h.last_flush)
    return [grouped_alerts(batch_of(rec, members), keys_shown) for rec, members in found.unsent]
