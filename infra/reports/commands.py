"""CLI handlers for the closed loop's reports and the audit journal (app.cli wires them).

- `fengkong report replay --alert ID | --account A --from T --to T | --day D [--out DIR]`
- `fengkong report kpi --from D --to D [--out DIR]`
- `fengkong audit verify [--archive DIR]` · `audit search --account A --from T --to T [--kind K]`
  · `audit archive [--day D] [--out DIR]`

Times are Beijing time (the exchanges' clock): `2026-12-01`, `2026-12-01 09:30`,
`2026-12-01T09:30:15` or epoch seconds; a bare date as --to means the end of that day.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from infra.audit import AuditStore
from infra.audit_archive import BEIJING, archive_day, key_from_env, verify_archive
from rules.display import beijing
from rules.journal_records import ENVELOPE, REGISTRY

CLOSED_LOOP_REPORTS = ("replay", "kpi", "day")


def parse_time(text: str, end_of_day: bool = False) -> float:
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M"):
        try:
            return dt.datetime.strptime(text, fmt).replace(tzinfo=BEIJING).timestamp()
        except ValueError:
            continue
    try:
        day = dt.datetime.strptime(text.replace("-", ""), "%Y%m%d").replace(tzinfo=BEIJING)
    except ValueError:
        raise ValueError(
            f"time {text!r}: not a time; give YYYY-MM-DD, YYYYMMDD, 'YYYY-MM-DD HH:MM[:SS]' "
            "(Beijing time) or a UTC epoch in seconds"
        ) from None
    if end_of_day:
        day += dt.timedelta(days=1, microseconds=-1)
    return day.timestamp()


def _fmt(ts: float) -> str:
    return beijing(ts, millis=True)


def _store(
    args: argparse.Namespace, load_config: Callable[[argparse.Namespace], Any]
) -> AuditStore:
    return AuditStore(args.journal or load_config(args).audit.path)


def cmd_closed_loop_report(
    args: argparse.Namespace, load_config: Callable[[argparse.Namespace], Any]
) -> int:
    from infra.reports.day import day_report
    from infra.reports.html import write_report
    from infra.reports.kpi import compute_kpis
    from infra.reports.replay import replay_account, replay_alert

    store = _store(args, load_config)
    t0 = time.perf_counter()
    if args.which == "replay" and args.alert:
        try:
            report = replay_alert(store, args.alert)
        except KeyError as exc:
            print(exc.args[0])
            return 1
        stem = f"replay-{args.alert}"
    elif args.which == "replay" and args.account:
        if not (args.since and args.until):
            print("report replay --account needs --from and --to")
            return 2
        since, until = parse_time(args.since), parse_time(args.until, end_of_day=True)
        report = replay_account(store, args.account, since, until)
        stem = f"replay-{args.account}"
    elif args.which in ("day", "replay") and (args.day or args.date):
        day = (args.day or args.date).replace("-", "")
        report = day_report(store, day)
        stem = f"audit-{day}"
    elif args.which == "kpi":
        if not (args.since and args.until):
            print("report kpi needs --from D --to D")
            return 2
        report = compute_kpis(store, parse_time(args.since), parse_time(args.until, True))
        report["kind"] = "report.kpi"
        stem = f"kpi-{args.since}-{args.until}".replace(" ", "_").replace(":", "")
    else:
        print("report replay needs --alert ID, --account A --from T --to T, or --day D")
        return 2
    html_path, json_path = write_report(report, args.out, stem)
    summary = {k: report[k] for k in ("closed_loop_rate", "chain_ok", "records") if k in report}
    print(json.dumps(summary) if summary else f"{len(report.get('timeline', []))} steps")
    print(f"wrote {html_path} and {json_path} in {time.perf_counter() - t0:.2f} s")
    return 0


def add_report_parser(sub: Any, common: Callable[[argparse.ArgumentParser], None],
                      load_config: Callable[[argparse.Namespace], Any]) -> None:  # fmt: skip
    """`fengkong report operating|replay|kpi|day ...`: one parser, one dispatch by `which`."""
    from infra.reports.operating import cmd_report as cmd_operating

    p = sub.add_parser("report", help="write a report from the journal (HTML and JSON)")
    common(p)
    p.add_argument("which", choices=("operating", *CLOSED_LOOP_REPORTS))
    p.add_argument("--date", help="operating: trading day, YYYY-MM-DD or YYYYMMDD")
    p.add_argument("--journal", help="journal file (default: audit.path of the config)")
    p.add_argument("--out", default="var/reports", help="output folder")
    p.add_argument("--alert", help="replay: the alert id")
    p.add_argument("--account", help="replay: one account (with --from/--to)")
    p.add_argument("--from", dest="since", help="start (Beijing time)")
    p.add_argument("--to", dest="until", help="end (Beijing time; a date means its end)")
    p.add_argument("--day", help="replay/day: the full audit report of one day")

    def dispatch(args: argparse.Namespace) -> int:
        if args.which in CLOSED_LOOP_REPORTS:
            return cmd_closed_loop_report(args, load_config)
        if not args.date:
            print(f"report {args.which} needs --date D")
            return 2
        return cmd_operating(args, load_config)

    p.set_defaults(func=dispatch)


def cmd_audit(args: argparse.Namespace, load_config: Callable[[argparse.Namespace], Any]) -> int:
    store = _store(args, load_config)
    cfg_audit = load_config(args).audit
    if args.action == "verify":
        breaks = store.verify()
        for b in breaks:
            print(f"BROKEN at seq {b.seq}: {b.reason}")
        problems = []
        if args.archive:
            key = key_from_env(cfg_audit.archive_key_env)
            for manifest in sorted(Path(args.archive).glob("journal-*.manifest.json")):
                problems += [f"{manifest.name}: {p}" for p in verify_archive(manifest, key)]
            for p in problems:
                print(f"ARCHIVE {p}")
        # issue 13 item 5: every decision record must match a signed request (and its seal)
        from infra.audit_decisions import check_decisions

        decided = check_decisions(store.query(kind="decision"), load_config(args).approval)
        for seq, why in decided.breaks:
            print(f"FORGED at seq {seq}: {why}")
        for note in decided.notes:
            print(f"NOTE {note}")
        state = "intact" if not breaks else "BROKEN"
        print(f"{store.count()} records, chain {state} ({store.path})")
        if decided.checked:
            bad = len(decided.breaks)
            print(f"{decided.checked} decision records, {bad} not matching a signed request")
        return 1 if breaks or problems or decided.breaks else 0
    if args.action == "archive":
        day = args.day or dt.datetime.now(BEIJING).strftime("%Y%m%d")
        key = key_from_env(cfg_audit.archive_key_env)
        m = archive_day(store, day, args.out or cfg_audit.archive_dir, key)
        print(json.dumps(m, indent=1))
        return 0
    since = parse_time(args.since) if args.since else None
    until = parse_time(args.until, end_of_day=True) if args.until else None
    t0 = time.perf_counter()
    rows = store.search(account=args.account, since=since, until=until, kind=args.kind,
                        limit=None if args.action == "search" else None)  # fmt: skip
    ms = (time.perf_counter() - t0) * 1000
    shown = rows[-args.limit :] if args.limit else rows
    for r in shown:
        detail = _detail_fields(r)
        print(
            f"{r['seq']:>8} {_fmt(r['ts'])} {r['kind']:<22} {r['key']:<14} {r['ref']:<16} "
            f"{json.dumps(detail, ensure_ascii=False)[:140]}"
        )
    print(f"{len(shown)} shown of {len(rows)} matching ({ms:.1f} ms; journal {store.path})")
    return 0


def _detail_fields(r: dict[str, Any]) -> dict[str, Any]:
    """A record's own fields: the fields of its kind's definition first (rules.journal_records),
    then whatever else the record carries (an auditor sees everything)."""
    cls = REGISTRY.get(r["kind"])
    order = [f for f in cls.field_names() if f in r] if cls is not None else []
    rest = [k for k in r if k not in order]
    return {k: r[k] for k in order + rest if k not in ENVELOPE}


def add_audit_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--from", dest="since", help="search: start (Beijing time)")
    p.add_argument("--to", dest="until", help="search: end (a date means its end)")
    p.add_argument("--day", help="archive: the day (default today)")
    p.add_argument("--out", help="archive: folder (default audit.archive_dir)")
    p.add_argument("--archive", help="verify: also check the archives in this folder")
