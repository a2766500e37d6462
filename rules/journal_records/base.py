"""The registry of typed journal records and the envelope every record shares."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar, TypeVar

ENVELOPE = ("kind", "actor", "key", "ref", "ts", "seq", "v")
REGISTRY: dict[str, type[JournalRecord]] = {}
R = TypeVar("R", bound="JournalRecord")


class UnknownRecordKind(KeyError):
    """A record whose kind no module registered."""


def register(cls: type[R]) -> type[R]:
    """Class decorator: the one definition of `cls.KIND` (a second one is a programming error)."""
    if cls.KIND in REGISTRY and REGISTRY[cls.KIND] is not cls:
        raise ValueError(f"journal record kind {cls.KIND!r} registered twice")
    REGISTRY[cls.KIND] = cls
    cls._FIELDS = tuple(f.name for f in fields(cls))
    return cls


def kind_of(cls: type[JournalRecord]) -> str:
    return cls.KIND


def parse(rec: dict[str, Any]) -> JournalRecord:
    """The typed record of a journal dict (by its `kind`)."""
    cls = REGISTRY.get(str(rec.get("kind", "")))
    if cls is None:
        raise UnknownRecordKind(f"journal record kind {rec.get('kind')!r} is not registered")
    return cls.from_record(rec)


@dataclass(frozen=True, kw_only=True)
class JournalRecord:
    """The envelope every record shares: who wrote it (actor), about what (key: account, group
    or contract), which object (ref: proposal id, order ref, alert id), when (ts)."""

    KIND: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1
    OPTIONAL: ClassVar[frozenset[str]] = frozenset()  # omitted from the dict when None
    REQUIRED: ClassVar[frozenset[str]] = frozenset()  # from_record refuses a record without one
    WIRE: ClassVar[dict[str, str]] = {}  # field -> journal key where they differ ("try")
    _FIELDS: ClassVar[tuple[str, ...]] = ()

    actor: str = ""
    key: str = ""
    ref: str = ""
    ts: float = 0.0
    seq: int | None = None  # the journal's sequence number, when read back

    @property
    def kind(self) -> str:
        return self.KIND

    @property
    def version(self) -> int:
        return self.VERSION

    def to_record(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self._FIELDS:
            value = getattr(self, name)
            if name == "seq" or (value is None and name in self.OPTIONAL):
                continue
            out[self.WIRE.get(name, name)] = value
        out["kind"] = self.KIND
        out["v"] = self.VERSION
        return out

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The record's fields in their defined order (the envelope first)."""
        return cls._FIELDS

    @classmethod
    def from_record(cls: type[R], rec: dict[str, Any]) -> R:
        """Known keys only (a newer writer's fields are ignored); a missing `REQUIRED` field
        raises TypeError naming it."""
        missing = [k for k in cls.REQUIRED if cls.WIRE.get(k, k) not in rec]
        if missing:
            raise TypeError(f"{cls.KIND} record lacks {', '.join(sorted(missing))}")
        wire = cls.WIRE
        return cls(**{k: rec[wire.get(k, k)] for k in cls._FIELDS if wire.get(k, k) in rec})


def kinds() -> tuple[str, ...]:
    """Every registered kind (other modules may register more after this one loads)."""
    return tuple(REGISTRY)
