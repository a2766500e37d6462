"""`fengkong backoffice load DIR|FILES` and `fengkong ctp check|status` (issue 15).

`backoffice load` reads settlement exports (docs/backoffice.md) and pushes them onto the
running system's account bus (accounts.inbound_endpoint); bad rows are printed with file, line
and reason and the rest are loaded; the exit code is 1 when any row was bad, so a scheduled job
notices. `--dry-run` reads and judges without sending.

`ctp check` says whether the CTP library loads on this machine (and why not); `ctp status`
asks the running CtpIngest actor for its sessions (state, queries, drifts; never credentials).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any


def cmd_backoffice(
    args: argparse.Namespace, load_config: Callable[[argparse.Namespace], Any]
) -> int:
    from gateways.backoffice.loader import expand, load_files

    paths = expand(args.targets)
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        print(f"backoffice: not found: {', '.join(missing)}")
        return 2
    result = load_files(paths)
    for problem in result.problems:
        print(f"  {problem}")
    kinds = ", ".join(f"{n} {k} rows" for k, n in sorted(result.rows.items())) or "no rows"
    counts: dict[str, int] = {}
    for rec in result.records:
        counts[rec["type"]] = counts.get(rec["type"], 0) + 1
    summary = ", ".join(f"{n} {t}" for t, n in sorted(counts.items())) or "nothing"
    if args.dry_run:
        print(f"dry run: {len(paths)} file(s), {kinds}: would send {summary}")
    elif result.records:
        from gateways.ctp.spi import BusPush

        endpoint = args.endpoint or load_config(args).accounts.inbound_endpoint
        push = BusPush(endpoint)
        push(result.records)
        push.close()
        print(f"{len(paths)} file(s), {kinds}: sent {summary} to {endpoint}")
    else:
        print(f"{len(paths)} file(s), {kinds}: nothing to send")
    if result.problems:
        print(f"{len(result.problems)} bad row(s) skipped")
    return 1 if result.problems else 0


def cmd_ctp(args: argparse.Namespace, load_config: Callable[[argparse.Namespace], Any]) -> int:
    if args.action == "check":
        from gateways import ctp

        reason = ctp.unavailable_reason()
        if reason:
            print(f"CTP unavailable: {reason}")
            return 1
        md, _ = ctp.load()
        print(f"CTP library loads: {md.CThostFtdcMdApi.GetApiVersion()}")
        return 0
    import ray

    from actors.common import actor_name

    cfg = load_config(args)
    if not ray.is_initialized():
        ray.init(address=args.address or cfg.cluster.address or "auto",
                 namespace=cfg.cluster.namespace, log_to_driver=False)  # fmt: skip
    status = ray.get(ray.get_actor(actor_name(args.prefix, "CtpIngest")).status.remote())
    print(json.dumps(status, indent=2, ensure_ascii=False, default=str))
    return 0


def add_parsers(sub: Any, common: Callable[[argparse.ArgumentParser], None],
                load_config: Callable[[argparse.Namespace], Any]) -> None:  # fmt: skip
    """Register replay, backoffice and ctp; let the config loader validate [ctp]/[backoffice]."""
    from app.replay_command import add_parser as add_replay
    from gateways.backoffice.watch import register as register_backoffice
    from gateways.ctp.config import register as register_ctp

    register_ctp()
    register_backoffice()
    add_replay(sub, common, load_config)
    p = sub.add_parser("backoffice", help="load back-office files onto the account bus")
    common(p)
    p.add_argument("action", choices=("load",))
    p.add_argument("targets", nargs="+", help="CSV files, or folders of them")
    p.add_argument("--endpoint", default="", help="account bus inbound (default: the config's)")
    p.add_argument("--dry-run", action="store_true", help="read and judge, send nothing")
    p.set_defaults(func=lambda a: cmd_backoffice(a, load_config))
    p = sub.add_parser("ctp", help="CTP: does the library load here; the running sessions")
    common(p)
    p.add_argument("action", choices=("check", "status"))
    p.add_argument("--prefix", default="fengkong.")
    p.set_defaults(func=lambda a: cmd_ctp(a, load_config))
