"""Alert hygiene, Alertmanager's pipeline as pure stages: dedup → inhibit → silence → repeat
→ group.

Every stage has one method, `apply(items, now) -> items that go on`; an item a stage stops is
marked with the reason (upper-case, as the journal records it) and what stopped it (the
inhibition rule, the silence). The order is readable in `Pipeline.stages`:

- Dedup: an alert id seen before (a retried call, a replayed shard) is dropped.
- Inhibit: while a source alert is recent, targets equal to it on the `equal` labels are muted
  (a liquidation-level alert for an account mutes its warnings). Sources are taken from the
  same batch first, most severe first, so a shock that raises both at once sends only the worse.
- Silence: an operator's matchers with a start, an end, an author and a reason.
- Repeat: a rule's key notified within its repeat interval is not notified again, so a metric
  that flaps across its re-arm level does not flood the channels.
- Group: what passes waits `group_wait_s` in its group (labels `group_by`) so one shock is one
  notification listing every account; a group already notified sends additions after
  `group_interval_s`. A batch of more than `digest_over` alerts is marked a digest (one
  notification); smaller batches are notified alert by alert. This is the only grouping:
  the Notifier pages the batches it is given and does not group again.

Pure: the Correlator runs it on wall time, the backtest on data time.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rules.engine.matchers import Matcher, match_all, parse_matchers
from rules.engine.spec import Hygiene, InhibitRule
from rules.model import Alert, severity_rank, stable_id

DEDUP_MEMORY = 200_000


@dataclass(slots=True)
class Item:
    alert: Alert
    labels: dict[str, str]
    reason: str = ""  # DUPLICATE, INHIBITED, SILENCED, REPEAT_INTERVAL
    by: str = ""


# ---- silences ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Silence:
    id: str
    matchers: tuple[Matcher, ...]
    starts_ts: float
    ends_ts: float
    created_by: str
    comment: str
    created_ts: float

    def active(self, now: float) -> bool:
        return self.starts_ts <= now < self.ends_ts

    def state(self, now: float) -> str:
        return "pending" if now < self.starts_ts else "active" if now < self.ends_ts else "expired"

    def to_dict(self) -> dict[str, Any]:
        return {
            "silence_id": self.id, "matchers": [str(m) for m in self.matchers],
            "starts_ts": self.starts_ts, "ends_ts": self.ends_ts, "created_by": self.created_by,
            "comment": self.comment, "created_ts": self.created_ts,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Silence:
        return cls(str(d["silence_id"]), parse_matchers(d["matchers"]), float(d["starts_ts"]),
                   float(d["ends_ts"]), str(d["created_by"]), str(d["comment"]),
                   float(d["created_ts"]))  # fmt: skip


def new_silence(
    matchers: Sequence[str], starts_ts: float, ends_ts: float, created_by: str, comment: str,
    now: float,
) -> Silence:  # fmt: skip
    """A validated silence (ValueError says what is wrong)."""
    parsed = parse_matchers(matchers)
    if not parsed:
        raise ValueError("a silence needs at least one matcher (e.g. key=ACC000123)")
    if all(m.op in ("=~", "!~") and m.value in (".*", ".+") for m in parsed):
        raise ValueError("a silence must not match every alert")
    if ends_ts <= starts_ts:
        raise ValueError("a silence must end after it starts")
    if not created_by.strip():
        raise ValueError("a silence needs its author")
    if not comment.strip():
        raise ValueError("a silence needs a reason (comment)")
    sid = stable_id("silence", *map(str, parsed), starts_ts, ends_ts, created_by, now, length=12)
    return Silence(sid, parsed, starts_ts, ends_ts, created_by, comment, now)


class Silences:
    """The silences known to this process (rebuilt from the journal on restart)."""

    def __init__(self) -> None:
        self.by_id: dict[str, Silence] = {}

    def add(self, silence: Silence) -> None:
        self.by_id[silence.id] = silence

    def expire(self, silence_id: str, now: float) -> Silence:
        matches = [s for sid, s in self.by_id.items() if sid.startswith(silence_id)]
        if len(matches) != 1:
            raise KeyError(f"{'no' if not matches else 'more than one'} silence {silence_id!r}")
        s = matches[0]
        ended = Silence(s.id, s.matchers, s.starts_ts, min(s.ends_ts, now), s.created_by,
                        s.comment, s.created_ts)  # fmt: skip
        self.by_id[s.id] = ended
        return ended

    def muting(self, labels: Mapping[str, str], now: float) -> Silence | None:
        for s in self.by_id.values():
            if s.active(now) and match_all(s.matchers, labels):
                return s
        return None

    def listed(self, now: float, include_expired: bool = False) -> list[Silence]:
        out = [s for s in self.by_id.values() if include_expired or s.state(now) != "expired"]
        return sorted(out, key=lambda s: (s.starts_ts, s.id))


# ---- stages --------------------------------------------------------------------------------


class DedupStage:
    name = "dedup"

    def __init__(self, memory: int = DEDUP_MEMORY) -> None:
        self.memory = memory
        self.seen: collections.OrderedDict[str, None] = collections.OrderedDict()

    def apply(self, items: list[Item], now: float) -> list[Item]:
        out = []
        for it in items:
            if it.alert.alert_id in self.seen:
                it.reason = "DUPLICATE"
                continue
            self.seen[it.alert.alert_id] = None
            if len(self.seen) > self.memory:
                self.seen.popitem(last=False)
            out.append(it)
        return out


class InhibitStage:
    name = "inhibit"

    def __init__(self, rules: Iterable[InhibitRule] = ()) -> None:
        self.rules = list(rules)
        # per rule: the equal-label values of recent sources -> (ts, source alert id)
        self.sources: list[dict[tuple[str, ...], tuple[float, str]]] = [{} for _ in self.rules]

    def apply(self, items: list[Item], now: float) -> list[Item]:
        if not self.rules:
            return items
        out = []
        for it in sorted(items, key=lambda i: -severity_rank(i.alert.severity)):
            for k, rule in enumerate(self.rules):
                if match_all(rule.target, it.labels):
                    eq = tuple(it.labels.get(e, "") for e in rule.equal)
                    src = self.sources[k].get(eq)
                    if (
                        src is not None
                        and now - src[0] <= rule.duration_s
                        and src[1] != it.alert.alert_id
                    ):
                        it.reason, it.by = "INHIBITED", f"{rule.id} by {src[1]}"
                        break
            if not it.reason:
                out.append(it)
            for k, rule in enumerate(self.rules):
                if match_all(rule.source, it.labels):
                    eq = tuple(it.labels.get(e, "") for e in rule.equal)
                    self.sources[k][eq] = (now, it.alert.alert_id)
        order = {id(it): n for n, it in enumerate(items)}
        return sorted(out, key=lambda it: order[id(it)])

    def expire(self, now: float) -> None:
        for k, rule in enumerate(self.rules):
            stale = [e for e, (ts, _) in self.sources[k].items() if now - ts > rule.duration_s]
            for e in stale:
                del self.sources[k][e]


class SilenceStage:
    name = "silence"

    def __init__(self, silences: Silences) -> None:
        self.silences = silences

    def apply(self, items: list[Item], now: float) -> list[Item]:
        out = []
        for it in items:
            s = self.silences.muting(it.labels, now)
            if s is not None:
                it.reason, it.by = "SILENCED", s.id
            else:
                out.append(it)
        return out


class RepeatStage:
    name = "repeat"

    def __init__(self, repeat_of: Callable[[str], float]) -> None:
        self.repeat_of = repeat_of
        self.last: dict[tuple[str, str], float] = {}

    def apply(self, items: list[Item], now: float) -> list[Item]:
        out = []
        for it in items:
            key = (it.alert.rule_id, it.alert.key)
            interval = self.repeat_of(it.alert.rule_id)
            before = self.last.get(key)
            if interval > 0 and before is not None and now - before < interval:
                it.reason, it.by = "REPEAT_INTERVAL", f"{interval:g}s"
                continue
            self.last[key] = now
            out.append(it)
        return out


@dataclass
class _Group:
    key: str
    created: float
    pending: list[Alert] = field(default_factory=list)
    flushed: int = 0
    last_flush: float = 0.0
    members: int = 0


@dataclass(frozen=True)
class Batch:
    """One notification's worth of a group."""

    group_key: str
    group_id: str
    alerts: tuple[Alert, ...]
    members: int  # alerts in the group so far, this batch included
    sequence: int  # 1 for the group's first notification
    digest: bool = False  # more than hygiene.digest_over alerts: one notification for all


class GroupStage:
    name = "group"

    def __init__(self, hygiene: Hygiene) -> None:
        self.h = hygiene
        self.groups: dict[str, _Group] = {}

    def key_of(self, labels: Mapping[str, str]) -> str:
        names = sorted(labels) if "..." in self.h.group_by else self.h.group_by
        return ",".join(f"{n}={labels.get(n, '')}" for n in names)

    def apply(self, items: list[Item], now: float) -> list[Item]:
        for it in items:
            key = self.key_of(it.labels)
            g = self.groups.get(key)
            if g is None:
                g = self.groups[key] = _Group(key, now)
            g.pending.append(it.alert)
            g.members += 1
        return items

    def due(self, now: float, flush_all: bool = False) -> list[Batch]:
        out = []
        for g in self.groups.values():
            if not g.pending:
                continue
            ready = now - g.created >= self.h.group_wait_s if not g.flushed else (
                now - g.last_flush >= self.h.group_interval_s
            )  # fmt: skip
            if ready or flush_all:
                g.flushed += 1
                g.last_flush = now
                alerts = tuple(g.pending)
                g.pending = []
                gid = stable_id("group", g.key, *sorted(a.alert_id for a in alerts))
                digest = len(alerts) > self.h.digest_over
                out.append(Batch(g.key, gid, alerts, g.members, g.flushed, digest))
        idle = max(self.h.group_interval_s * 10, 3600.0)
        for key in [
            k
            for k, g in self.groups.items()
            if not g.pending and now - max(g.last_flush, g.created) > idle
        ]:
            del self.groups[key]
        return out

    def waiting(self) -> int:
        return sum(len(g.pending) for g in self.groups.values())

    def restore(
        self, key: str, pending: Sequence[Alert], sequence: int, members: int, last_flush: float
    ) -> None:
        """A restarted Correlator puts a group back as it was: its pending alerts (waiting
        since the oldest was created) and how often it was notified before."""
        created = min((a.created_ts for a in pending), default=last_flush)
        g = self.groups.get(key)
        if g is None:
            g = self.groups[key] = _Group(key, created if not sequence else last_flush)
        g.flushed = max(g.flushed, sequence)
        g.last_flush = max(g.last_flush, last_flush)
        g.members = max(g.members, members) + len(pending)
        g.pending.extend(pending)


class Pipeline:
    """dedup → inhibit → silence → repeat → group, with the rule set's hygiene settings."""

    def __init__(
        self, hygiene: Hygiene, inhibit: Iterable[InhibitRule], silences: Silences,
        repeat_of: Callable[[str], float],
    ) -> None:  # fmt: skip
        self.dedup = DedupStage()
        self.group = GroupStage(hygiene)
        self.configure(hygiene, inhibit, repeat_of)
        self.silence = SilenceStage(silences)

    def configure(
        self, hygiene: Hygiene, inhibit: Iterable[InhibitRule], repeat_of: Callable[[str], float]
    ) -> None:
        """A new rule set: new inhibition rules and defaults; recent history is kept."""
        rules = list(inhibit)
        old = getattr(self, "inhibit", None)
        self.inhibit = InhibitStage(rules)
        if old is not None:
            for k, rule in enumerate(rules):
                same = [j for j, r in enumerate(old.rules) if r == rule]
                if same:
                    self.inhibit.sources[k] = old.sources[same[0]]
        self.group.h = hygiene
        previous = getattr(self, "repeat", None)
        self.repeat = RepeatStage(repeat_of)
        if previous is not None:
            self.repeat.last = previous.last

    @property
    def stages(self) -> list[Any]:
        return [self.dedup, self.inhibit, self.silence, self.repeat, self.group]

    def admit(self, items: list[Item], now: float) -> list[Item]:
        """Run the stages; returns the items that passed (the rest carry their reason)."""
        for stage in self.stages:
            items = stage.apply(items, now)
        return items
