"""The `fengkong` command: the operator's entry point.

A composition root: it parses arguments and calls into the layers; the work lives there.
Commands that act on a running system (approve, reject, proposals) join its Ray cluster;
commands that read history (alerts, audit) read the journal file, running system or not.
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import json
import sys
import time
from typing import Any

from infra import config as config_mod
from infra.audit import AuditStore


def _load_config(args: argparse.Namespace) -> config_mod.Config:
    path = getattr(args, "config", None)
    return config_mod.load(path) if path else config_mod.default()


def _journal(args: argparse.Namespace) -> AuditStore:
    path = args.journal or _load_config(args).audit.path
    return AuditStore(path)


def _fmt_ts(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) + f".{int(ts % 1 * 1000):03d}"


def cmd_demo(args: argparse.Namespace) -> int:
    from actors.demo import run_demo

    cfg = _load_config(args)
    sim = cfg.sim
    if args.duration is not None:
        sim = dataclasses.replace(sim, duration_s=args.duration)
    if args.accounts is not None:
        sim = dataclasses.replace(sim, accounts=args.accounts)
    if args.no_approve:
        sim = dataclasses.replace(sim, auto_approve_as="")
    cfg = dataclasses.replace(cfg, sim=sim)
    if args.shards is not None:
        cfg = dataclasses.replace(
            cfg, accounts=dataclasses.replace(cfg.accounts, shards=args.shards)
        )
    summary = run_demo(cfg, address=args.address)
    return 0 if summary.get("journal_chain_ok") else 1


def cmd_run(args: argparse.Namespace) -> int:
    import ray

    from actors.supervisor import start_system, stop_system
    from infra.cluster import dashboard_hint, start_ray

    cfg = _load_config(args)
    url = start_ray(cfg.cluster, args.address)
    print(f"Ray dashboard: {url or '(cluster dashboard)'} — {dashboard_hint()}")
    system = start_system(cfg)
    print(f"fengkong running ({cfg.source}); journal {cfg.audit.path}; Ctrl-C to stop")
    deadline = time.time() + args.duration if args.duration else float("inf")
    try:
        while time.time() < deadline:
            time.sleep(5)
            stats = ray.get(system.correlator.stats.remote())
            print(f"alerts {stats.get('alerts', 0)}  tick→alert {stats.get('tick_to_alert_ms')}")
    except KeyboardInterrupt:
        pass
    finally:
        stop_system(system)
    return 0


def _executor(args: argparse.Namespace) -> Any:
    import ray

    from actors.common import actor_name

    cfg = _load_config(args)
    address = args.address or cfg.cluster.address or "auto"
    ray.init(address=address, namespace=cfg.cluster.namespace, log_to_driver=False)
    return ray.get_actor(actor_name(args.prefix, "Executor"))


def cmd_proposals(args: argparse.Namespace) -> int:
    import ray

    rows = ray.get(_executor(args).pending.remote())
    for p in rows:
        print(
            f"{p['proposal_id']}  {p['kind']:<10} {p['account_id']:<12} target {p['target_risk_degree']:.0%}  {p['reason']}"
        )
    print(f"{len(rows)} pending")
    return 0


def cmd_approve(args: argparse.Namespace) -> int:
    import ray

    results = ray.get(_executor(args).approve.remote(args.ids, args.as_user))
    print(json.dumps(results, indent=2, ensure_ascii=False))
    return 1 if any("refused" in r for r in results) else 0


def cmd_reject(args: argparse.Namespace) -> int:
    import ray

    result = ray.get(_executor(args).reject.remote(args.id, args.as_user, args.reason))
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 1 if "refused" in result else 0


def cmd_alerts(args: argparse.Namespace) -> int:
    store = _journal(args)
    rows = store.query(kind="alert")[-args.limit :]
    for r in rows:
        print(f"{_fmt_ts(r['ts'])}  {r['alert_id']}  {r['severity']:<9} {r['title']}")
    print(f"{len(rows)} alerts shown (journal {store.path})")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
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
    p.add_argument("--duration", type=float, help="seconds to run (default from config: 60)")
    p.add_argument("--accounts", type=int, help="number of simulated accounts")
    p.add_argument("--shards", type=int, help="number of account shards")
    p.add_argument("--no-approve", action="store_true", help="leave proposals pending for the CLI")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("run", help="run the actors of a config on a (joined) Ray cluster")
    common(p)
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.set_defaults(func=cmd_run)

    for name, func, helptext in (("proposals", cmd_proposals, "list pending proposals"),):
        p = sub.add_parser(name, help=helptext)
        common(p)
        p.add_argument("--prefix", default="fengkong.")
        p.set_defaults(func=func)

    p = sub.add_parser("approve", help="approve proposals and execute them")
    common(p)
    p.add_argument("ids", nargs="+")
    p.add_argument("--as", dest="as_user", default=getpass.getuser())
    p.add_argument("--prefix", default="fengkong.")
    p.set_defaults(func=cmd_approve)

    p = sub.add_parser("reject", help="reject a proposal")
    common(p)
    p.add_argument("id")
    p.add_argument("--reason", default="")
    p.add_argument("--as", dest="as_user", default=getpass.getuser())
    p.add_argument("--prefix", default="fengkong.")
    p.set_defaults(func=cmd_reject)

    p = sub.add_parser("alerts", help="list alerts from the journal")
    common(p)
    p.add_argument("--journal", help="journal file (default: audit.path of the config)")
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(func=cmd_alerts)

    p = sub.add_parser("audit", help="read or verify the audit journal")
    common(p)
    p.add_argument("action", nargs="?", choices=("list", "verify"), default="list")
    p.add_argument("--journal", help="journal file (default: audit.path of the config)")
    p.add_argument("--kind")
    p.add_argument("--account")
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(func=cmd_audit)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except config_mod.ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
