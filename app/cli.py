"""The `fengkong` command: the operator's entry point.

A composition root: it parses arguments and calls into the layers; the work lives there. Commands
that act on a running system join its Ray cluster; those that read history read the journal.
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import json
import sys
from typing import Any

from app import handles
from app.cli_output import OperatorError, one_line, proposal_lines, rollup_text, top_text
from app.decision_cli import decision, decision_options
from app.journal_cli import cmd_alerts, cmd_audit
from infra import config as config_mod
from infra.audit import AuditStore
from rules.display import beijing


def _load_config(args: argparse.Namespace) -> config_mod.Config:
    return handles.load_config(args)


def _journal(args: argparse.Namespace) -> AuditStore:
    path = args.journal or _load_config(args).audit.path
    return AuditStore(path)


def _fmt_ts(ts: float) -> str:
    return beijing(ts, millis=True)


def cmd_demo(args: argparse.Namespace) -> int:
    from app.demo import run_demo
    from app.preflight import preflight

    cfg = _load_config(args)
    preflight(cfg)  # before Ray starts
    sim = cfg.sim
    if args.duration is not None:
        sim = dataclasses.replace(sim, duration_s=args.duration)
    if args.accounts is not None:
        sim = dataclasses.replace(sim, accounts=args.accounts)
    if args.no_approve:
        sim = dataclasses.replace(sim, auto_approve_as="")
    cfg = dataclasses.replace(cfg, sim=sim)
    if args.shards is not None:
        accounts = dataclasses.replace(cfg.accounts, shards=args.shards)
        cfg = dataclasses.replace(cfg, accounts=accounts)
    summary = run_demo(cfg, address=args.address, roll_day_at_s=args.roll_day_at)
    return 0 if summary.get("journal_chain_ok") else 1


def _executor(args: argparse.Namespace) -> Any:
    return handles.executor(args)


def cmd_proposals(args: argparse.Namespace) -> int:
    import ray

    executor = _executor(args)
    rows = ray.get(executor.pending.remote())
    for line in proposal_lines(rows):
        print(line)
    for g in ray.get(executor.groups.remote()):
        if g["states"].get("pending"):
            print(f"group {g['group_id']}: {g['proposals']} {g['kind']} proposals {g['states']}")
    print(f"{len(rows)} pending")
    return 0


def cmd_approve(args: argparse.Namespace) -> int:
    return decision(args, "approve", list(args.ids), _load_config, _executor)


def cmd_reject(args: argparse.Namespace) -> int:
    return decision(args, "reject", [args.id] if args.id else [], _load_config, _executor)


def cmd_propose(args: argparse.Namespace) -> int:
    import ray

    executor = _executor(args)
    out = ray.get(
        executor.propose.remote(args.account, args.kind, args.as_user, args.target, args.reason)
    )
    print(json.dumps(out, indent=2, ensure_ascii=False))
    return 1 if "refused" in out else 0


def cmd_ack(args: argparse.Namespace) -> int:
    """Acknowledge an alert on the running Notifier: its escalation stops."""
    import ray

    from actors.common import actor_name

    cfg = _load_config(args)
    if not ray.is_initialized():
        address = args.address or cfg.cluster.address or "auto"
        ray.init(address=address, namespace=cfg.cluster.namespace, log_to_driver=False)
    notifier = ray.get_actor(actor_name(args.prefix, "Notifier"))
    result = ray.get(notifier.ack.remote(args.alert, args.as_user, "cli"))
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 1 if "error" in result else 0


def _shards(args: argparse.Namespace) -> list[Any]:
    return handles.shards(args)


def cmd_accounts(args: argparse.Namespace) -> int:
    """Drill-down on a running system: the riskiest accounts, one account, or the roll-ups."""
    import ray

    from actors.common import actor_name
    from infra.account_notes import account_text
    from rules.account_math import FIGURES
    from rules.sharding import shard_of

    if args.action == "top" and args.by not in FIGURES:
        raise OperatorError(f"--by {args.by!r}: not a figure; one of {', '.join(FIGURES)}")
    shards = _shards(args)
    if args.action == "show":
        if not args.id:
            print("fengkong accounts show ID", file=sys.stderr)
            return 2
        views = ray.get(shards[shard_of(args.id, len(shards))].accounts.remote([args.id]))
        if args.id not in views:
            raise OperatorError(f"accounts show {args.id}: no such account in the books")
        view = views[args.id]
        print(account_text(view))
        try:
            store = _journal(args)
            for r in store.query(key=args.id)[-args.events :]:
                print(
                    f"{_fmt_ts(r['ts'])}  {r['kind']:<22} {r.get('title') or r.get('reason') or ''}"
                )
        except Exception as exc:  # the journal is optional for a drill-down
            print(f"(no journal events: {exc})")
        return 0
    if args.action == "rollup":
        hierarchy = ray.get_actor(actor_name(args.prefix, "Hierarchy"))
        rows = ray.get(hierarchy.rollups.remote(args.level, args.group or ""))
        print(rollup_text(rows))
        return 0
    parts = ray.get([s.top.remote(args.top, args.by, args.group or "") for s in shards])
    rows = sorted(
        (r for part in parts for r in part),
        key=lambda r: r[args.by],
        reverse=args.by not in ("liquidation_distance", "available", "equity", "static_equity"),
    )
    print(top_text(rows[: args.top]))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fengkong", description="Real-time futures risk control on Ray"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", help="TOML config file (default: the embedded demo config)")
        p.add_argument("--address", help="Ray cluster address to join (default: local)")

    p = sub.add_parser("demo", help="run the whole loop against a simulated market (make run)")
    common(p)
    p.add_argument("--duration", type=float, help="seconds to run (default from config: 50)")
    p.add_argument("--accounts", type=int, help="number of simulated accounts")
    p.add_argument("--shards", type=int, help="number of account shards")
    p.add_argument("--no-approve", action="store_true", help="leave proposals pending for the CLI")
    p.add_argument("--roll-day-at", type=float, help="second at which the trading day settles")
    p.set_defaults(func=cmd_demo)

    from app.run_command import add_parsers as run_parsers

    run_parsers(sub, common)  # run, status, stop

    for name, func, helptext in (("proposals", cmd_proposals, "list pending proposals"),):
        p = sub.add_parser(name, help=helptext)
        common(p)
        p.add_argument("--prefix", default="fengkong.")
        p.set_defaults(func=func)

    p = sub.add_parser("approve", help="approve proposals (or a batch group) and execute them")
    common(p)
    p.add_argument("ids", nargs="*")
    decision_options(p, "approve")
    p.set_defaults(func=cmd_approve)

    p = sub.add_parser("reject", help="reject a proposal (or a batch group)")
    common(p)
    p.add_argument("id", nargs="?")
    decision_options(p, "reject")
    p.set_defaults(func=cmd_reject)

    p = sub.add_parser("propose", help="propose an action by hand (someone else must approve)")
    common(p)
    p.add_argument("account")
    p.add_argument(
        "--kind", choices=("reduce", "liquidate", "margin_call", "freeze"), required=True
    )
    p.add_argument("--target", type=float, default=0.8)
    p.add_argument("--reason", default="")
    p.add_argument("--as", dest="as_user", default=getpass.getuser())
    p.add_argument("--prefix", default="fengkong.")
    p.set_defaults(func=cmd_propose)

    p = sub.add_parser("ack", help="acknowledge an alert (stops its escalation)")
    common(p)
    p.add_argument("alert", help="alert id (or page id of a digest)")
    p.add_argument("--as", dest="as_user", default=getpass.getuser())
    p.add_argument("--prefix", default="fengkong.")
    p.set_defaults(func=cmd_ack)

    p = sub.add_parser(
        "accounts", help="top accounts, one account, or roll-ups of a running system"
    )
    common(p)
    p.add_argument("action", nargs="?", choices=("top", "show", "rollup"), default="top")
    p.add_argument("id", nargs="?")
    p.add_argument("--top", type=int, default=20)
    p.add_argument(
        "--by",
        default="risk_degree",
        help="figure to rank by (risk_degree, liquidation_distance, ...)",
    )
    p.add_argument("--group", help="only accounts under this node, e.g. grpA/sub1")
    p.add_argument("--level", choices=("group", "subsidiary", "unit", "strategy"))
    p.add_argument("--events", type=int, default=20, help="recent journal events to show")
    p.add_argument("--journal")
    p.add_argument("--prefix", default="fengkong.")
    p.set_defaults(func=cmd_accounts)

    p = sub.add_parser("alerts", help="list alerts from the journal")
    common(p)
    p.add_argument("--journal", help="journal file (default: audit.path of the config)")
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(func=cmd_alerts)

    p = sub.add_parser("audit", help="read or verify the audit journal")
    common(p)
    p.add_argument(
        "action", nargs="?", choices=("list", "verify", "search", "archive"), default="list"
    )
    p.add_argument("--journal", help="journal file (default: audit.path of the config)")
    p.add_argument("--kind")
    p.add_argument("--account")
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(func=cmd_audit)
    from infra.reports.commands import add_audit_arguments

    add_audit_arguments(p)

    from infra.reports.commands import add_report_parser

    add_report_parser(sub, common, _load_config)
    from app.rules_cli import add_parsers as add_rules_parsers

    add_rules_parsers(sub, common, _load_config)  # rules, silence, backtest (issue 6)
    from app.ctp_commands import add_parsers as add_edge_parsers  # replay, backoffice, ctp

    add_edge_parsers(sub, common, _load_config)
    from app.stress_command import add_parser as add_stress_parser

    add_stress_parser(sub, common, _load_config)  # stress (issue 18)
    from app.anomaly_cli import add_parser as add_anomaly_parser

    add_anomaly_parser(sub)

    from app.console.people_cli import add_parser as add_people_parser

    add_people_parser(sub, common, _load_config)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Every operator-facing error is one line with its reason; `--debug` (anywhere on the
    command line) shows the traceback instead."""
    if argv is None and "ray" not in sys.modules:  # the command itself, before Ray is imported
        from infra.cluster_env import token_auth_default

        token_auth_default()  # Ray's token authentication on (issue 13 item 5)
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except config_mod.ConfigError as exc:
        if debug:
            raise
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if debug:
            raise
        code = 2 if isinstance(exc, (OperatorError, ValueError, KeyError, FileNotFoundError)) else 1
        print(f"error: {one_line(exc)} (--debug shows the traceback)", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
