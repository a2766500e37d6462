"""The morning stress run: before the open, the desk's scenarios on the live book.

Config (validated when the config is loaded, errors name the key):

    [stress]
    morning = "08:45"                       # local time of day, HH:MM, in `timezone`
    timezone = "Asia/Shanghai"              # the exchanges' clock
    scenarios = ["black-open-7", "all-limit-down"]   # names from the library (+ `files`)
    target = 0.8                            # the risk degree a margin call restores, (0, 1]
    proposer = "stress.morning"             # who the proposals are by (must be in the roster)
    files = []                              # extra scenario TOML files

`run_morning` does one run: every scenario through the shards (`live_stress`, one call per shard),
one alert of rule `stress.morning` to the Notifier with the summary of each scenario, and one
margin-call proposal per account past the line in any scenario through the Executor's manual
proposal API — the normal approval path, so a person still approves every call (four-eyes).
`morning_loop` runs it once a day at `morning`; `fengkong stress morning` starts that loop
against a running system (or `--once`).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from infra.stress_io import load_scenarios
from rules.model import Alert, stable_id

KEYS = frozenset({"morning", "timezone", "scenarios", "target", "proposer", "files"})
RULE_ID = "stress.morning"


@dataclass(frozen=True, slots=True)
class MorningStress:
    morning: dt.time
    scenarios: tuple[str, ...]
    target: float = 0.8
    timezone: str = "Asia/Shanghai"
    proposer: str = "stress.morning"
    files: tuple[str, ...] = ()


def parse_stress_table(raw: Any, cfg: Any = None) -> MorningStress:
    """The `[stress]` table as MorningStress (the config loader's hook); ValueError names the key."""
    if isinstance(raw, MorningStress):
        return raw
    if not isinstance(raw, dict):
        raise ValueError(f"[stress] must be a table, got {type(raw).__name__}")
    unknown = sorted(set(raw) - KEYS)
    if unknown:
        raise ValueError(f"[stress] unknown key {unknown[0]!r} (known: {sorted(KEYS)})")
    text = raw.get("morning")
    try:
        morning = dt.time.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        morning = None
    if morning is None:
        raise ValueError(f'[stress] morning must be a time of day like "08:45", got {text!r}')
    target = raw.get("target", 0.8)
    if isinstance(target, bool) or not isinstance(target, int | float) or not 0 < target <= 1:
        raise ValueError(f"[stress] target must be a risk degree in (0, 1], got {target!r}")
    zone = raw.get("timezone", "Asia/Shanghai")
    try:
        ZoneInfo(str(zone))
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"[stress] timezone {zone!r} is not a known time zone") from None
    files = raw.get("files", [])
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise ValueError("[stress] files must be a list of paths")
    names = raw.get("scenarios")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ValueError("[stress] scenarios must be a non-empty list of scenario names")
    library = load_scenarios(files)
    missing = [n for n in names if n not in library]
    if missing:
        raise ValueError(f"[stress] scenarios: unknown {missing[0]!r}; known: {', '.join(library)}")
    proposer = raw.get("proposer", "stress.morning")
    if not isinstance(proposer, str) or not proposer:
        raise ValueError(f"[stress] proposer must be a user name, got {proposer!r}")
    return MorningStress(morning, tuple(names), float(target), str(zone), proposer, tuple(files))


def register() -> None:
    """Validate `[stress]` when a config is loaded (infra.config.EDGE_VALIDATORS)."""
    from infra.config import EDGE_VALIDATORS

    EDGE_VALIDATORS["stress"] = parse_stress_table


def run_morning(
    shards: list[Any],
    notifier: Any,
    executor: Any,
    settings: MorningStress,
    now: float | None = None,
) -> dict[str, Any]:
    """One morning run on the live book: the desk notified, the margin calls proposed."""
    import ray

    from app.stress_live import live_stress

    now = time.time() if now is None else now
    library = load_scenarios(settings.files)
    summaries: list[dict[str, Any]] = []
    calls: dict[str, float] = {}  # account -> the largest call over the scenarios
    for name in settings.scenarios:
        result = live_stress(shards, library[name], settings.target)
        summaries.append(result.summary())
        for i in result.past_line.nonzero()[0]:
            account = result.account_ids[int(i)]
            calls[account] = max(calls.get(account, 0.0), float(result.margin_call[i]))
    day = dt.datetime.fromtimestamp(now, ZoneInfo(settings.timezone)).date().isoformat()
    lines = [f"{s['scenario']}: {s['past_line']} past the line, {s['bust']} 穿仓, "
             f"margin calls ¥{s['margin_call']:,.0f}" for s in summaries]  # fmt: skip
    alert = Alert(
        alert_id=stable_id(RULE_ID, day, now),
        rule_id=RULE_ID,
        key=f"desk:{day}",
        severity="warning" if calls else "info",
        title=f"morning stress {day}: {len(calls)} accounts past the line; " + "; ".join(lines),
        value=float(len(calls)),
        threshold=1.0,
        created_ts=now,
        ingress_ts=now,
        dimension="stress",
        attributes={
            "day": day,
            "target": settings.target,
            "scenarios": summaries,
            "margin_calls": calls,
        },  # fmt: skip
    )
    ray.get(notifier.notify.remote([alert]))
    reason = f"morning stress {day}: past the line in {', '.join(settings.scenarios)}"
    replies = ray.get([
        executor.propose.remote(a, "margin_call", settings.proposer, settings.target, reason)
        for a in sorted(calls)
    ])  # fmt: skip
    return {"alert_id": alert.alert_id, "day": day, "scenarios": summaries,
            "margin_calls": calls, "proposals": replies}  # fmt: skip


def next_run(settings: MorningStress, now: float) -> float:
    """The epoch time of the next `morning` (today's if still ahead, else tomorrow's)."""
    zone = ZoneInfo(settings.timezone)
    local = dt.datetime.fromtimestamp(now, zone)
    at = dt.datetime.combine(local.date(), settings.morning, zone)
    if at.timestamp() <= now:
        at = dt.datetime.combine(local.date() + dt.timedelta(days=1), settings.morning, zone)
    return at.timestamp()


def morning_loop(
    run: Any, settings: MorningStress, stop: threading.Event, clock: Any = time.time
) -> None:
    """Call `run()` at each morning until `stop` is set; a failed run is printed, not fatal."""
    while True:
        if stop.wait(max(0.0, next_run(settings, clock()) - clock())):
            return
        try:
            run()
        except Exception as exc:  # noqa: BLE001 (the desk's loop outlives one bad morning)
            print(f"fengkong stress morning: run failed: {exc}")
