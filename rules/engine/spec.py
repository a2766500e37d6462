"""A rule as data: what a rules file says, frozen, comparable, and hashed into a version.

`RuleSpec` is the common part every kind shares (id, metric, scope, condition, severity,
sessions, repeat interval, action); what only one kind needs (a window, a join) lives in
`params`, declared by the kind (rules.engine.template). A `RuleSet` is everything one
`fengkong rules apply` replaces at once: the rules, the inhibition rules and the hygiene
defaults. Its version is a hash of its content, so the same file applied twice is the same
version, and `diff` says rule by rule what a new version changes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from rules.engine.matchers import Matcher, parse_matchers
from rules.model import SEVERITIES

NODE_SCOPES = ("group", "subsidiary", "unit", "strategy")
BOOK_SCOPES = ("commodity", "business_unit")
SCOPES = ("account", *NODE_SCOPES, *BOOK_SCOPES, "contract", "feed", "any")
OPS = (">", ">=", "<", "<=")
ACTION_KINDS = ("reduce", "liquidate", "margin_call", "freeze")


@dataclass(frozen=True)
class RuleSpec:
    id: str
    kind: str = "threshold"
    metric: str = "risk_degree"
    scope: str = "account"
    op: str = ">"
    threshold: float = 0.0
    rearm: float | None = None  # None: re-arm as soon as the condition no longer holds
    severity: str = "warning"
    description: str = ""
    sessions: tuple[str, ...] = ()
    repeat_s: float | None = None  # None: the rule set's hygiene default
    action: Mapping[str, Any] | None = None
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def rearm_level(self) -> float:
        return self.threshold if self.rearm is None else float(self.rearm)

    def param(self, name: str, default: Any = None) -> Any:
        return self.params.get(name, default)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-safe): what is journaled, hashed and sent to actors."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "sessions":
                value = list(value)
            elif f.name in ("action", "params"):
                value = _plain(value) if value else ({} if f.name == "params" else None)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RuleSpec:
        names = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in names}
        kwargs["sessions"] = tuple(kwargs.get("sessions") or ())
        kwargs["params"] = dict(kwargs.get("params") or {})
        kwargs["action"] = dict(kwargs["action"]) if kwargs.get("action") else None
        return cls(**kwargs)

    def fingerprint(self) -> str:
        return _digest(self.to_dict())


@dataclass(frozen=True)
class Hygiene:
    """Alert hygiene defaults (Alertmanager's route settings)."""

    group_by: tuple[str, ...] = ("rule_id",)
    group_wait_s: float = 0.25  # a new group waits this long for the rest of its shock
    group_interval_s: float = 5.0  # later additions to a notified group wait this long
    repeat_s: float = 0.0  # a rule's key is not notified again within this (0: no limit)
    # A group's batch of more alerts than this is one digest notification; up to it, one
    # notification per alert. The only grouping: the Notifier pages batches as they come.
    digest_over: int = 5

    def to_dict(self) -> dict[str, Any]:
        return {
            **{f.name: getattr(self, f.name) for f in fields(self)},
            "group_by": list(self.group_by),
        }


@dataclass(frozen=True)
class InhibitRule:
    """While a source alert is recent, target alerts equal to it on `equal` labels are muted:
    a liquidation-level alert for an account mutes that account's warnings."""

    id: str
    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...] = ("key",)
    duration_s: float = 3600.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": [str(m) for m in self.source],
            "target": [str(m) for m in self.target],
            "equal": list(self.equal),
            "duration_s": self.duration_s,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InhibitRule:
        return cls(
            id=str(data["id"]),
            source=parse_matchers(data.get("source", ())),
            target=parse_matchers(data.get("target", ())),
            equal=tuple(data.get("equal", ("key",))),
            duration_s=float(data.get("duration_s", 3600.0)),
        )


@dataclass(frozen=True)
class RuleSet:
    """`rules` are what `fengkong rules apply` replaces; `base` the deployment config's own
    rules (its market rules, book limits and fund flows), which a hot reload keeps: every
    actor evaluates both, the version and the diff are the applied rules'."""

    rules: tuple[RuleSpec, ...] = ()
    inhibit: tuple[InhibitRule, ...] = ()
    hygiene: Hygiene = Hygiene()
    source: str = ""  # file names it was loaded from (not part of the version)
    base: tuple[RuleSpec, ...] = ()  # not part of the version

    @property
    def everything(self) -> tuple[RuleSpec, ...]:
        """The rules actors evaluate: the config's base, then the applied rules."""
        return self.base + self.rules

    @property
    def version(self) -> str:
        return _digest(self.content())[:12]

    def content(self) -> dict[str, Any]:
        return {
            "rules": [r.to_dict() for r in self.rules],
            "inhibit": [i.to_dict() for i in self.inhibit],
            "hygiene": self.hygiene.to_dict(),
        }

    def to_bundle(self) -> dict[str, Any]:
        """What actors receive and the journal keeps: content, version and source."""
        return {**self.content(), "version": self.version, "source": self.source,
                "base": [r.to_dict() for r in self.base]}  # fmt: skip

    @classmethod
    def from_bundle(cls, bundle: Mapping[str, Any]) -> RuleSet:
        h = dict(bundle.get("hygiene") or {})
        if "group_by" in h:
            h["group_by"] = tuple(h["group_by"])
        return cls(
            rules=tuple(RuleSpec.from_dict(r) for r in bundle.get("rules", ())),
            inhibit=tuple(InhibitRule.from_dict(i) for i in bundle.get("inhibit", ())),
            hygiene=Hygiene(**h),
            source=str(bundle.get("source", "")),
            base=tuple(RuleSpec.from_dict(r) for r in bundle.get("base", ())),
        )

    def by_id(self) -> dict[str, RuleSpec]:
        return {r.id: r for r in self.rules}

    def where(
        self, kinds: Iterable[str] | None = None, scopes: Iterable[str] | None = None
    ) -> list[RuleSpec]:
        ks, ss = set(kinds or ()), set(scopes or ())
        return [r for r in self.rules if (not ks or r.kind in ks) and (not ss or r.scope in ss)]


def diff(old: RuleSet | None, new: RuleSet) -> dict[str, Any]:
    """What `new` changes: rule ids added and removed, changed keys per rule (old → new),
    and changes of the inhibition rules and hygiene defaults."""
    before = old.by_id() if old is not None else {}
    after = new.by_id()
    changed: dict[str, dict[str, list[Any]]] = {}
    for rid in sorted(set(before) & set(after)):
        a, b = before[rid].to_dict(), after[rid].to_dict()
        keys = {k: [a[k], b[k]] for k in a if a[k] != b[k]}
        if keys:
            changed[rid] = keys
    out: dict[str, Any] = {
        "from": old.version if old is not None else None,
        "to": new.version,
        "added": sorted(set(after) - set(before)),
        "removed": sorted(set(before) - set(after)),
        "changed": changed,
    }
    old_inhibit = [i.to_dict() for i in old.inhibit] if old is not None else []
    if old_inhibit != [i.to_dict() for i in new.inhibit]:
        out["inhibit"] = [old_inhibit, [i.to_dict() for i in new.inhibit]]
    old_h = old.hygiene.to_dict() if old is not None else None
    if old_h != new.hygiene.to_dict():
        out["hygiene"] = [old_h, new.hygiene.to_dict()]
    return out


def check_common(spec: RuleSpec) -> None:
    """What every kind requires; raises ValueError naming the key."""
    if not spec.id or not isinstance(spec.id, str):
        raise ValueError("id: must be a non-empty string")
    if spec.severity not in SEVERITIES:
        raise ValueError(f"severity: must be one of {SEVERITIES}, got {spec.severity!r}")
    if spec.scope not in SCOPES:
        raise ValueError(f"scope: must be one of {SCOPES}, got {spec.scope!r}")
    if spec.op not in OPS:
        raise ValueError(f"op: must be one of {OPS}, got {spec.op!r}")
    above = spec.op.startswith(">")
    if (above and spec.rearm_level > spec.threshold) or (
        not above and spec.rearm_level < spec.threshold
    ):
        side = "at or below" if above else "at or above"
        raise ValueError(
            f"rearm: {spec.rearm_level} must be {side} threshold {spec.threshold} for op {spec.op!r}"
        )
    if spec.repeat_s is not None and spec.repeat_s < 0:
        raise ValueError("repeat_s: must be zero or positive")
    if spec.action:
        kind = spec.action.get("kind")
        if kind not in ACTION_KINDS:
            raise ValueError(f"action.kind: must be one of {ACTION_KINDS}, got {kind!r}")


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _digest(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()
