"""Label matchers, as Alertmanager writes them: `name=value`, `name!=value`, `name=~regex`,
`name!~regex`. Silences, inhibition rules and composite conditions all select alerts this way,
so an operator learns one syntax.

Regexes are anchored (the whole label must match), so `key=~ACC00.*` means what it says.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

OPS = ("=~", "!~", "!=", "=")
_FORM = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$")


@dataclass(frozen=True, slots=True)
class Matcher:
    name: str
    op: str
    value: str

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"matcher {self.name}: op must be one of {OPS}, got {self.op!r}")
        if self.op in ("=~", "!~"):
            try:
                re.compile(self.value)
            except re.error as exc:
                raise ValueError(
                    f"matcher {self.name}{self.op}{self.value}: bad regex: {exc}"
                ) from None

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.name, "")
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        hit = _compiled(self.value).fullmatch(value) is not None
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        return f"{self.name}{self.op}{self.value}"


_CACHE: dict[str, re.Pattern[str]] = {}


def _compiled(pattern: str) -> re.Pattern[str]:
    found = _CACHE.get(pattern)
    if found is None:
        found = _CACHE[pattern] = re.compile(pattern)
    return found


def parse_matcher(text: str) -> Matcher:
    """`severity=~critical|emergency` → Matcher; ValueError saying what was expected."""
    m = _FORM.match(str(text))
    if m is None:
        raise ValueError(
            f"matcher {text!r}: expected name=value, name!=value, name=~re or name!~re"
        )
    value = m.group(3)
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    return Matcher(m.group(1), m.group(2), value)


def parse_matchers(items: Iterable[str]) -> tuple[Matcher, ...]:
    return tuple(parse_matcher(t) for t in items)


def match_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)


def labels_of(
    rule_id: str, key: str, severity: str, dimension: str, attributes: Mapping[str, Any]
) -> dict[str, str]:
    """The labels an alert (or event) is matched on: its identity plus every text attribute
    (group_path, product, feed, commodity, kind, ...)."""
    labels = {k: v for k, v in attributes.items() if isinstance(v, str)}
    labels.update(rule=rule_id, rule_id=rule_id, key=key, severity=severity, dimension=dimension)
    return labels
