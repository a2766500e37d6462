"""Inventory, contract and price files in a watched folder: read, validate, report bad rows.

File formats (one record kind per row; see rules.exposure.parse_record for the fields):

- CSV with a header, UTF-8 (with or without BOM) or GBK, as Excel writes it. The kind of each
  row is its `kind` column, else the file name's prefix: `inventory*`, `contract*`, `spot*`,
  `futures_close*`.
- JSON: a list of objects, or `{"kind": ..., "records": [...]}`; JSON Lines (`.jsonl`): one
  object per line. An object's own `kind` wins over the file's.

A bad row never stops a file: it becomes a `Reject` with the file, line and reason, and the rest
is loaded. A file that cannot be read at all is one Reject without a line.

Watching is polling (`FolderWatcher.changed`, one `stat` per file per scan) — no OS-specific
notification API, and it works on network shares. Write files elsewhere and rename them into
the folder (or let the writer finish within `settle_s`): a file is read once its size and
modification time have stayed the same for one scan.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rules.exposure import KINDS, InputError, Record, parse_record

SUFFIXES = (".csv", ".json", ".jsonl")
_PREFIXES = (("futures_close", "futures_close"), ("inventory", "inventory"),
             ("contract", "contract"), ("spot", "spot"))  # fmt: skip


@dataclass(frozen=True, slots=True)
class Reject:
    source: str
    line: int | None
    reason: str
    commodity: str | None = None

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line is not None else self.source
        return f"{where}: {self.reason}"


@dataclass(slots=True)
class Parsed:
    source: str
    records: list[tuple[int | None, Record]] = field(default_factory=list)  # (line, record)
    rejects: list[Reject] = field(default_factory=list)


def kind_from_name(path: Path) -> str | None:
    name = path.name.lower()
    for prefix, kind in _PREFIXES:
        if name.startswith(prefix):
            return kind
    return None


def parse_rows(source: str, rows: list[tuple[int | None, Any]], default_kind: str | None) -> Parsed:
    """Validate (line, mapping) rows into records and rejects."""
    out = Parsed(source)
    for line, raw in rows:
        commodity = None
        try:
            if isinstance(raw, _Bad):
                raise InputError(str(raw))
            if not isinstance(raw, dict):
                raise InputError(f"expected an object, got {type(raw).__name__}")
            commodity = str(raw.get("commodity") or "").strip() or None
            kind = str(raw.get("kind") or default_kind or "").strip()
            if not kind:
                raise InputError(
                    f"no record kind: add a kind column ({', '.join(KINDS)}) or name the file "
                    "inventory*, contract*, spot* or futures_close*"
                )
            out.records.append((line, parse_record(kind, raw)))
        except InputError as exc:
            out.rejects.append(Reject(source, line, str(exc), commodity))
    return out


def read_file(path: Path) -> Parsed:
    """Records and rejects of one file (never raises for bad content)."""
    source = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return Parsed(source, rejects=[Reject(source, None, f"cannot read: {exc}")])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = raw.decode("gbk")
        except UnicodeDecodeError:
            return Parsed(source, rejects=[Reject(source, None, "neither UTF-8 nor GBK text")])
    kind = kind_from_name(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            rows = _csv_rows(text)
        elif suffix == ".jsonl":
            rows = _jsonl_rows(text)
        elif suffix == ".json":
            rows, kind = _json_rows(text, kind)
        else:
            raise _FileError(f"unsupported file type {suffix!r}; use {', '.join(SUFFIXES)}")
    except _FileError as exc:
        return Parsed(source, rejects=[Reject(source, exc.line, exc.reason)])
    return parse_rows(source, rows, kind)


def _csv_rows(text: str) -> list[tuple[int | None, Any]]:
    reader = csv.reader(io.StringIO(text))
    header: list[str] | None = None
    rows: list[tuple[int | None, Any]] = []
    for cells in reader:
        line = reader.line_num
        if not any(c.strip() for c in cells):
            continue
        if header is None:
            header = [c.strip() for c in cells]
            continue
        if len(cells) != len(header):
            rows.append((line, f"{len(cells)} columns, the header has {len(header)}"))
            continue
        rows.append((line, dict(zip(header, cells, strict=True))))
    if header is None:
        raise _FileError("empty file: no header")
    return [(ln, r if isinstance(r, dict) else _Bad(r)) for ln, r in rows]


class _Bad(str):
    """A row that failed before validation; parse_rows reports its text as the reason."""


class _FileError(Exception):
    def __init__(self, reason: str, line: int | None = None) -> None:
        super().__init__(reason)
        self.reason, self.line = reason, line


def _jsonl_rows(text: str) -> list[tuple[int | None, Any]]:
    rows: list[tuple[int | None, Any]] = []
    for line, item in enumerate(text.splitlines(), start=1):
        if not item.strip():
            continue
        try:
            rows.append((line, json.loads(item)))
        except json.JSONDecodeError as exc:
            rows.append((line, _Bad(f"not valid JSON: {exc.msg}")))
    return rows


def _json_rows(text: str, kind: str | None) -> tuple[list[tuple[int | None, Any]], str | None]:
    """Objects of a JSON list (or of the "records" list of an object) with their line numbers."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _FileError(f"not valid JSON: {exc.msg}", exc.lineno) from None
    if isinstance(doc, dict):
        kind = str(doc.get("kind") or kind or "") or None
        items = doc.get("records")
        if not isinstance(items, list):
            raise _FileError('a JSON object needs a "records" list')
        start = text.index("[", text.index('"records"'))
    elif isinstance(doc, list):
        items, start = doc, text.index("[")
    else:
        raise _FileError("expected a list of records or an object with a records list")
    decoder, pos, rows = json.JSONDecoder(), start + 1, []
    for item in items:  # re-decode element by element to learn where each one starts
        while text[pos] in " \t\r\n,":
            pos += 1
        _obj, end = decoder.raw_decode(text, pos)
        rows.append((text.count("\n", 0, pos) + 1, item))
        pos = end
    return rows, kind


class FolderWatcher:
    """Files of a folder that are new or changed since the last scan (and settled)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.read: dict[str, tuple[int, int]] = {}
        self._pending: dict[str, tuple[int, int]] = {}

    def changed(self) -> list[Path]:
        out: list[Path] = []
        try:
            entries = sorted(self.folder.iterdir())
        except FileNotFoundError:
            return out
        for path in entries:
            if path.suffix.lower() not in SUFFIXES or not path.is_file():
                continue
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            sig = (st.st_mtime_ns, st.st_size)
            key = str(path)
            if self.read.get(key) == sig:
                continue
            if self._pending.get(key) == sig:  # unchanged since the last scan: settled
                out.append(path)
                self.read[key] = sig
                self._pending.pop(key, None)
            else:
                self._pending[key] = sig
        return out
