"""From config to the pure escalation records, and from a step to its recipients.

Without configured chains the Notifier behaves as before escalation existed: one level that
sends on every channel at once to the channel's own `to` list (roster ""), so a config with only
channels keeps working.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rules.escalation import Chain, Contact, Level, LevelStep, Roster, Route, on_call, route

CHANNEL_ROSTER = ""  # a step whose recipients are the channel's own `to` list
DEFAULT_CHAIN = "default"


@dataclass(frozen=True)
class Routing:
    rosters: dict[str, Roster]
    chains: dict[str, Chain]
    routes: tuple[Route, ...]

    def chain_for(self, severity: str, dimension: str, key: str, group: str) -> Chain:
        name = route(self.routes, severity, dimension, key, group) or DEFAULT_CHAIN
        return self.chains.get(name) or self.chains[DEFAULT_CHAIN]

    def contacts(self, roster: str, now: float) -> tuple[Contact, ...]:
        found = self.rosters.get(roster)
        return on_call(found, now) if found is not None else ()


def build_routing(settings: Any, channel_names: list[str]) -> Routing:
    """Validate references against the channels at hand; raise ValueError naming the culprit.

    `settings` is the notifier's config (rosters, chains, routes), read by attribute so this
    pure layer does not import the config module."""
    rosters = {
        r.name: Roster(
            r.name,
            tuple(Contact(m.name, m.phone, m.email, m.wecom) for m in r.members),
            r.rotation_s,
            r.rotation_start,
        )
        for r in settings.rosters
    }
    chains: dict[str, Chain] = {}
    for c in settings.chains:
        levels = []
        for i, lv in enumerate(c.levels):
            after = lv.after_s if lv.after_s >= 0 else i * c.level_after_s
            steps = tuple(LevelStep(s.channel, s.after_s) for s in lv.steps)
            for s in steps:
                if s.channel not in channel_names:
                    raise ValueError(
                        f"notifier chain {c.name!r} level {i}: unknown channel {s.channel!r} "
                        f"(channels: {channel_names})"
                    )
            levels.append(Level(lv.roster, after, steps))
        chains[c.name] = Chain(c.name, tuple(levels))
    if DEFAULT_CHAIN not in chains:
        steps = tuple(LevelStep(name) for name in channel_names)
        chains[DEFAULT_CHAIN] = Chain(DEFAULT_CHAIN, (Level(CHANNEL_ROSTER, 0.0, steps),))
    routes = tuple(
        Route(r.chain, r.min_severity, tuple(r.dimensions), tuple(r.keys), tuple(r.groups))
        for r in settings.routes
    )
    return Routing(rosters, chains, routes)


def recipients(
    kind: str, contacts: tuple[Contact, ...], channel_to: list[str]
) -> list[tuple[str, list[str], dict[str, Any] | None]]:
    """(recipient, mentions, contact) per notification a step sends on a channel of `kind`.

    A WeCom group robot posts once for the roster and @mentions its people; the other channels
    send one message per person with an address for them.
    """
    if not contacts:
        return [(r, [], None) for r in channel_to]
    if kind == "wecom":
        mobiles = [c.address("wecom") for c in contacts if c.address("wecom")]
        return [("", mobiles, None)]
    out = []
    for c in contacts:
        addr = c.address(kind)
        if addr:
            out.append(
                (addr, [], {"name": c.name, "phone": c.phone, "email": c.email, "wecom": c.wecom})
            )
    return out
