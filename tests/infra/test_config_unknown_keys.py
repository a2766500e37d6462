"""Every table of the config rejects an unknown key with a did-you-mean (issue 13, item 8).

The tables are found by walking the Config dataclass itself, so a table added later is checked
without editing this test: each gets a misspelling of one of its own keys.
"""

from __future__ import annotations

import dataclasses
import typing

import pytest

from infra import config
from infra.config.errors import ConfigError
from infra.config.loader import Config

REQUIRED = {  # the least a list entry needs to be built (its required keys)
    "rules": {"id": "r1"},
    "books.limits": {"id": "l1"},
    "channels": {"name": "c1", "type": "wecom"},
}


def _tables(cls: type, path: str) -> list[tuple[str, type, bool]]:
    """(dotted path, dataclass, is a list entry) of every table under cls."""
    out = []
    for f in dataclasses.fields(cls):
        tp = typing.get_type_hints(cls)[f.name]
        item, many = tp, False
        if typing.get_origin(tp) is tuple:
            item, many = typing.get_args(tp)[0], True
        if dataclasses.is_dataclass(item):
            where = f"{path}.{f.name}".lstrip(".")
            out.append((where, item, many))
            out.extend(_tables(item, where))
    return out


def _nest(path: str, leaf: dict, lists: set[str]) -> dict:
    parts = path.split(".")
    data: dict = {}
    node = data
    for i, part in enumerate(parts):
        here = ".".join(parts[: i + 1])
        child = {**(leaf if i == len(parts) - 1 else {}), **REQUIRED.get(here, {})}
        node[part] = [child] if here in lists else child
        node = child
    return data


TABLES = _tables(Config, "")
LISTS = {p for p, _cls, many in TABLES if many}


def _misspelt(cls: type, path: str) -> tuple[str, str]:
    if path == "channels":
        return "markdwn", "markdown"
    name = next(f.name for f in dataclasses.fields(cls) if len(f.name) > 3)
    return name[:-1] + name[-1].upper() * 2, name  # "batch_ms" -> "batch_mSS"


@pytest.mark.parametrize(("path", "cls", "many"), TABLES, ids=[t[0] for t in TABLES])
def test_every_table_rejects_an_unknown_key_with_a_did_you_mean(path, cls, many):
    wrong, right = _misspelt(cls, path)
    data = _nest(path, {wrong: 1}, LISTS)
    with pytest.raises(ConfigError) as err:
        config.from_dict(data, source="<test>")
    message = str(err.value)
    assert wrong in message and "unknown key" in message
    assert f"did you mean '{right}'" in message


def test_a_legacy_rule_action_rejects_an_unknown_key():
    data = {"rules": [{"id": "r1", "action": {"kind": "reduce", "targt": 0.7}}]}
    with pytest.raises(ConfigError, match=r"rules\[0\]\.action\.targt: unknown key.*'target'"):
        config.from_dict(data, source="<test>")


def test_a_policy_rejects_an_unknown_key():
    data = {"accounts": {"policies": [{"match": "*", "markupp": 0.1}]}}
    with pytest.raises(ConfigError, match=r"did you mean 'markup'"):
        config.from_dict(data, source="<test>")
