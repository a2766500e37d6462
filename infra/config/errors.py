"""The config's error type and the did-you-mean every table's unknown key gets."""

from __future__ import annotations

import difflib
import typing
from collections.abc import Iterable

SEVERITIES = ("info", "warning", "critical", "emergency")


class ConfigError(ValueError):
    """A config problem, with the dotted key that caused it."""


def fail(path: str, why: str) -> typing.NoReturn:
    raise ConfigError(f"{path}: {why}")


def hint(key: str, options: Iterable[str]) -> str:
    found = difflib.get_close_matches(key, list(options), n=1)
    return f" (did you mean '{found[0]}'?)" if found else ""
