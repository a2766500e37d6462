"""A synchronous shell for the notification machine in tests: it journals every effect into a
list (with seq numbers, like the AuditLog), confirms durable writes at once, and keeps the posts
the machine asked for until the test answers them."""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Any

from rules.escalation import Chain, Contact, Level, LevelStep, Roster, Route
from rules.model import Alert, stable_id
from rules.notify import machine
from rules.notify.inputs import ACCEPTED, Effects, Journaled, Replay, Result, Send, Tick
from rules.notify.model import LaneSpec, Settings
from rules.notify.routing import Routing

DESK = Contact("zhang", phone="+8613800000001", email="zhang@desk.local")
HEAD = Contact("wang", phone="+8613800000002", email="wang@head.local")
WECOM = LaneSpec("wecom", "wecom", rate=None)
SMS = LaneSpec("sms", "twilio_sms")
EMAIL = LaneSpec("email", "email")


@dataclass(frozen=True)
class KeyedLane(LaneSpec):
    """A lane whose provider recognises a resent request by its key. None of the shipped
    channels has one (Twilio's Messages and Calls create take no key: docs/delivery.md); the
    machine keeps the rule for a provider that does, and the tests keep it honest."""

    @property
    def idempotent(self) -> bool:
        return True


KEYED = KeyedLane("keyed", "twilio_sms")  # SMS as it would be with a provider-side key


def routing(*levels: Level, rosters: tuple[Roster, ...] = ()) -> Routing:
    rosters = rosters or (Roster("desk", (DESK,)), Roster("head", (HEAD,)))
    chain = Chain("default", tuple(levels) or (Level("desk", 0.0, (LevelStep("wecom"),)),))
    return Routing({r.name: r for r in rosters}, {"default": chain}, (Route("default"),))


def alert(key: str, now: float = 0.0, group: dict | None = None, rule: str = "r.warn") -> Alert:
    attrs: dict[str, Any] = {"equity": 1e6, "margin": 9.3e5, "risk_degree": 0.93}
    if group:
        attrs["group"] = group
    return Alert(
        alert_id=stable_id(rule, key, now),
        rule_id=rule,
        key=key,
        severity="critical",
        title=f"账户 {key} 风险度 93%",
        value=0.93,
        threshold=0.8,
        created_ts=now,
        ingress_ts=now,
        attributes=attrs,
    )


class Driver:
    def __init__(self, lanes: list[LaneSpec], route: Routing | None = None, **settings: Any):
        settings.setdefault("session", "s1-")
        self.st = machine.new_state(Settings(**settings), lanes, route or routing())
        self.journal: list[dict[str, Any]] = []
        self.entries: list[tuple[str, list[str]]] = []  # (durability, kinds) in order written
        self.sends: list[Send] = []
        self.loads: list[tuple[str, list[str]]] = []
        self.replies: list[Any] = []

    def apply(self, inp: Any, now: float) -> Effects:
        eff = machine.apply(self.st, inp, now)
        self.perform(eff, now)
        return eff

    def perform(self, eff: Effects, now: float) -> None:
        for durability, records in eff.journal:
            self.entries.append((durability, [r["kind"] for r in records]))
            for r in records:
                self.journal.append({**r, "seq": len(self.journal) + 1})
        if eff.token is not None:
            self.apply(Journaled(eff.token), now)
        self.sends.extend(eff.sends)
        self.loads.extend(eff.loads)

    def tick(self, now: float) -> list[Send]:
        """A timer step; again at once when it released notifications (the actor's kick)."""
        before = len(self.sends)
        while self.apply(Tick(), now).token is not None:
            pass
        return self.sends[before:]

    def answer(self, send: Send, now: float, outcome: str = ACCEPTED, **kw: Any) -> Effects:
        self.sends.remove(send)
        return self.apply(Result(send.try_id, outcome, **kw), now)

    def deliver_all(self, now: float, step: float = 0.01, until: float = 600.0) -> float:
        """Tick and accept every post until nothing is owed (or `until`); returns the time."""
        while now < until:
            for s in self.tick(now):
                self.answer(s, now, provider_id=f"p-{s.try_id}")
            if self.st.settled() and not self.sends:
                return now
            now = round(now + step, 6)
        raise AssertionError(f"not settled by {until}: {machine.stats(self.st)}")

    def kinds(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.journal if r["kind"] == kind]

    def replay(self) -> Replay:
        by_kind: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
        for r in self.journal:
            by_kind[r["kind"]].append(r)
        return Replay(dict(by_kind))
