"""`fengkong alerts` and `fengkong audit`: the journal read on the command line, every time in
Beijing time labelled (the journal keeps UTC epochs)."""

from __future__ import annotations

import argparse
import json

from infra import config as config_mod
from infra.audit import AuditStore
from rules.display import beijing


def _load_config(args: argparse.Namespace) -> config_mod.Config:
    path = getattr(args, "config", None)
    return config_mod.load(path) if path else config_mod.default()


def _journal(args: argparse.Namespace) -> AuditStore:
    path = args.journal or _load_config(args).audit.path
    return AuditStore(path)


def _fmt_ts(ts: float) -> str:
    return beijing(ts, millis=True)


def cmd_alerts(args: argparse.Namespace) -> int:
    store = _journal(args)
    rows = store.query(kind="alert")[-args.limit :]
    for r in rows:
        print(f"{_fmt_ts(r['ts'])}  {r['alert_id']}  {r['severity']:<9} {r['title']}")
    print(f"{len(rows)} alerts shown (journal {store.path})")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    if args.action in ("verify", "search", "archive"):
        from infra.reports.commands import cmd_audit as audit_command

        return audit_command(args, _load_config)
    store = _journal(args)
    if args.action == "verify":
        breaks = store.verify()
        for b in breaks:
            print(f"BROKEN at seq {b.seq}: {b.reason}")
        print(
            f"{store.count()} records, chain {'intact' if not breaks else 'BROKEN'} ({store.path})"
        )
        return 1 if breaks else 0
    rows = store.query(kind=args.kind, key=args.account)[-args.limit :]
    for r in rows:
        detail = {
            k: v for k, v in r.items() if k not in ("seq", "ts", "kind", "actor", "key", "ref")
        }
        print(
            f"{r['seq']:>8} {_fmt_ts(r['ts'])} {r['kind']:<22} {r['key']:<14} {json.dumps(detail, ensure_ascii=False)[:160]}"
        )
    print(f"{len(rows)} records shown of {store.count()} (journal {store.path})")
    return 0
