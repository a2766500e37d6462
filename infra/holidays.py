"""Read the user's exchange-holiday list for the session calendar.

Holidays change every year (the State Council publishes them each autumn), so they are data the
operator supplies, never code. Accepted files:

- JSON in wtpy's `holidays.json` format: `{"CHINA": ["20250101", "20250128", ...]}` — every
  list of every key is read (keys starting with "_" are comments); or a plain JSON list;
- text: one date per line (YYYYMMDD or YYYY-MM-DD), `#` starts a comment.

An unreadable entry fails the whole load with the file, line (or entry) and reason: a calendar
missing one holiday would raise stale-feed alerts all that day.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from rules.sessions import parse_day


def load_holidays(path: str | Path) -> frozenset[date]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise FileNotFoundError(f"{p}: holiday file not found") from None
    if p.suffix.lower() == ".json":
        return _from_json(p, text)
    days: set[date] = set()
    for line_no, line in enumerate(text.splitlines(), start=1):
        item = line.split("#", 1)[0].strip()
        if not item:
            continue
        try:
            days.add(parse_day(item))
        except ValueError as exc:
            raise ValueError(f"{p}: line {line_no}: {exc}") from None
    return frozenset(days)


def _from_json(p: Path, text: str) -> frozenset[date]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{p}: not valid JSON: {exc}") from None
    if isinstance(doc, list):
        lists = {"": doc}
    elif isinstance(doc, dict):
        lists = {k: v for k, v in doc.items() if not str(k).startswith("_")}
    else:
        raise ValueError(f"{p}: expected a list of dates or a map of calendar name to dates")
    days: set[date] = set()
    for name, items in lists.items():
        if not isinstance(items, list):
            raise ValueError(f"{p}: {name!r} must be a list of YYYYMMDD dates")
        for i, item in enumerate(items):
            try:
                days.add(parse_day(str(item)))
            except ValueError as exc:
                where = f"{name}[{i}]" if name else f"entry {i}"
                raise ValueError(f"{p}: {where}: {exc}") from None
    return frozenset(days)
