"""Routing and escalation as data: which chain an alert follows, who is on call, which step is due.

Pure functions over frozen records, so the Notifier actor, a replay after a restart and a test
all compute the same answer from (chain, start time, steps already fired, now). The chain is a
list of levels (risk desk → business head → executive); each level is a roster and a few
channel steps with delays (WeCom at once, SMS at 60 s, a voice call at 180 s).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rules.model import severity_rank


@dataclass(frozen=True, slots=True)
class Contact:
    """One person: the address each kind of channel uses (E.164 phone, e-mail, WeCom mobile)."""

    name: str
    phone: str = ""
    email: str = ""
    wecom: str = ""  # mobile to @mention in a WeCom group

    def address(self, kind: str) -> str:
        """The address a channel of `kind` reaches this person at ("" when there is none)."""
        if kind in ("twilio_sms", "twilio_voice"):
            return self.phone
        if kind == "email":
            return self.email
        if kind == "wecom":
            return self.wecom or self.phone.removeprefix("+86")
        return ""


@dataclass(frozen=True, slots=True)
class Roster:
    """People of one duty. With `rotation_s` > 0 one member is on call at a time, in turn from
    `rotation_start` (epoch seconds); otherwise every member is."""

    name: str
    members: tuple[Contact, ...]
    rotation_s: float = 0.0
    rotation_start: float = 0.0


@dataclass(frozen=True, slots=True)
class LevelStep:
    channel: str
    after_s: float = 0.0  # from the start of its level


@dataclass(frozen=True, slots=True)
class Level:
    roster: str
    after_s: float  # from the start of the page
    steps: tuple[LevelStep, ...]


@dataclass(frozen=True, slots=True)
class Chain:
    name: str
    levels: tuple[Level, ...]


@dataclass(frozen=True, slots=True)
class Step:
    """One flattened step of a chain: at `at_s` after the page opened, send on `channel` to the
    on-call people of `roster`."""

    index: int
    at_s: float
    level: int
    roster: str
    channel: str


@dataclass(frozen=True, slots=True)
class Route:
    """First matching route wins. Empty pattern lists match everything; `keys` and `groups` are
    shell-style patterns over the alert key (account, contract…) and the account group path."""

    chain: str
    min_severity: str = "info"
    dimensions: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()


def expand(chain: Chain) -> tuple[Step, ...]:
    """Flatten a chain into steps ordered by time (then level, then the order written)."""
    flat = [
        (level.after_s + step.after_s, li, si, level.roster, step.channel)
        for li, level in enumerate(chain.levels)
        for si, step in enumerate(level.steps)
    ]
    flat.sort()
    return tuple(
        Step(index=i, at_s=at, level=li, roster=roster, channel=channel)
        for i, (at, li, _si, roster, channel) in enumerate(flat)
    )


def due(steps: Sequence[Step], started: float, now: float, fired: Iterable[int]) -> list[Step]:
    """Steps whose time has come and that have not fired yet, oldest first."""
    done = set(fired)
    return [s for s in steps if s.index not in done and started + s.at_s <= now]


def next_at(steps: Sequence[Step], started: float, fired: Iterable[int]) -> float | None:
    """Epoch time of the next step still to fire, or None when the chain is exhausted."""
    done = set(fired)
    times = [started + s.at_s for s in steps if s.index not in done]
    return min(times) if times else None


def _matches(patterns: tuple[str, ...], value: str) -> bool:
    return not patterns or any(fnmatch.fnmatchcase(value, p) for p in patterns)


def route(
    routes: Sequence[Route], severity: str, dimension: str, key: str, group_path: str = ""
) -> str | None:
    """Name of the chain of the first route that matches, or None."""
    rank = severity_rank(severity)
    for r in routes:
        if (
            rank >= severity_rank(r.min_severity)
            and _matches(r.dimensions, dimension)
            and _matches(r.keys, key)
            and _matches(r.groups, group_path)
        ):
            return r.chain
    return None


def on_call(roster: Roster, ts: float) -> tuple[Contact, ...]:
    """Who of the roster is reached at time `ts`."""
    if roster.rotation_s <= 0 or not roster.members:
        return roster.members
    turn = int((ts - roster.rotation_start) // roster.rotation_s) % len(roster.members)
    return (roster.members[turn],)
