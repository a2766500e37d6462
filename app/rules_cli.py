"""`fengkong rules ...`, `fengkong silence ...` and `fengkong backtest`: the rule engine's
operator commands (added to app.cli's parser by `add_parsers`).

- rules check FILE...: validate and show the version, nothing else;
- rules apply FILE... --as USER: validate, journal (who, when, diff) and push to every actor of
  the running system; a bad file prints its error and changes nothing (exit 2);
- rules show: the rule set a running system has, and the journal's history of changes;
- rules migrate CONFIG [--out FILE]: the config's old rule tables as an equivalent rules file;
- silence add MATCHER... --comment WHY --as USER [--duration 2h | --start --end]; list; expire;
- backtest --ticks FILE... --accounts FILE --positions FILE --rules FILE --out DIR [--specs].
"""

from __future__ import annotations

import argparse
import getpass
import json
import re
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any

from infra import rulesets
from rules.display import beijing
from rules.engine.template import PLACES

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """`90`, `90s`, `30m`, `2h`, `1d` → seconds."""
    m = _DURATION.match(text)
    if m is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 90s, 30m, 2h or 1d")
    return float(m.group(1)) * _UNIT[m.group(2)]


def parse_time(text: str) -> float:
    """ISO time (`2026-01-05T21:00:00+08:00`; without a zone: Beijing time) → epoch seconds."""
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO time") from None
    if dt.tzinfo is None:
        from gateways.market.replay import BEIJING

        dt = dt.replace(tzinfo=BEIJING)
    return dt.timestamp()


def _join(args: argparse.Namespace, load_config: Callable[[argparse.Namespace], Any]) -> Any:
    import ray

    cfg = load_config(args)
    if not ray.is_initialized():
        address = args.address or cfg.cluster.address or "auto"
        ray.init(address=address, namespace=cfg.cluster.namespace, log_to_driver=False)
    return cfg


def _correlator(args: argparse.Namespace, load_config: Callable[..., Any]) -> Any:
    import ray

    from actors.common import actor_name

    _join(args, load_config)
    return ray.get_actor(actor_name(args.prefix, "Correlator"))


def _fmt(ts: float) -> str:
    return beijing(ts)


# ---- rules ---------------------------------------------------------------------------------


def cmd_rules(args: argparse.Namespace, load_config: Callable[..., Any]) -> int:
    if args.action == "migrate":
        return _migrate(args)
    if args.action in ("check", "apply"):
        if not args.files:
            print(f"fengkong rules {args.action} FILE [FILE ...]", file=sys.stderr)
            return 2
        cfg = load_config(args)
        try:
            ruleset = rulesets.load(args.files, cfg.market.stats.vol_windows_s)
            from actors.rules_push import validate

            validate(ruleset, cfg)
        except ValueError as exc:
            print(f"rules error: {exc}", file=sys.stderr)
            return 2
        places = {p: len(rulesets.placed(ruleset, p))
                  for p in PLACES}  # fmt: skip
        print(f"{ruleset.source}: version {ruleset.version}, {len(ruleset.rules)} rules {places}, "
              f"{len(ruleset.inhibit)} inhibition rules")  # fmt: skip
        if args.action == "check":
            return 0
        from actors import rules_push

        _join(args, load_config)
        actors = rules_push.RuleActors.by_name(args.prefix)
        if actors.correlator is None or actors.audit is None:
            print(
                f"no running system with prefix {args.prefix!r} in this namespace", file=sys.stderr
            )
            return 1
        report = rules_push.apply(actors, ruleset, cfg, args.as_user)
        print(
            json.dumps(
                {k: report[k] for k in ("version", "by", "diff", "errors")},
                indent=2,
                ensure_ascii=False,
            )
        )
        print(f"pushed to {len(report['actors'])} actors")
        return 1 if report["errors"] else 0
    import ray

    correlator = _correlator(args, load_config)
    current = ray.get(correlator.ruleset_bundle.remote())
    print(
        f"running: version {current['version']} ({current.get('source', '')}), {len(current['rules'])} rules"
    )
    audit = ray.get_actor(f"{args.prefix}AuditLog")
    for rec in ray.get(audit.query.remote(kind=rulesets.JOURNAL_KIND))[-args.limit :]:
        d = rec.get("diff", {})
        print(f"{_fmt(rec['ts'])}  {rec['version']}  {rec.get('how', ''):<8} by {rec.get('by', '')}: "
              f"+{len(d.get('added', []))} -{len(d.get('removed', []))} ~{len(d.get('changed', {}))}")  # fmt: skip
    return 0


def _migrate(args: argparse.Namespace) -> int:
    """`rules migrate CONFIG [--out FILE]`: the config's old rule tables as a rules file."""
    from infra.rules_migrate import migrate_file

    if len(args.files) != 1:
        print("fengkong rules migrate CONFIG [--out FILE]", file=sys.stderr)
        return 2
    try:
        cfg, text = migrate_file(args.files[0])
    except ValueError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    if not args.out:
        sys.stdout.write(text)
        return 0
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"{args.out}: {text.count('[[rules]]')} rules from {cfg.source}; add it to "
          f"rules_files and delete the old tables")  # fmt: skip
    return 0


# ---- silences ------------------------------------------------------------------------------


def cmd_silence(args: argparse.Namespace, load_config: Callable[..., Any]) -> int:
    import ray

    correlator = _correlator(args, load_config)
    if args.action == "add":
        if not args.matchers:
            print(
                "fengkong silence add MATCHER [MATCHER ...] --comment WHY --as USER",
                file=sys.stderr,
            )
            return 2
        result = ray.get(correlator.add_silence.remote(
            list(args.matchers), args.as_user, args.comment or "", args.duration, args.start, args.end))  # fmt: skip
    elif args.action == "expire":
        if not args.matchers:
            print("fengkong silence expire ID --as USER", file=sys.stderr)
            return 2
        result = ray.get(correlator.expire_silence.remote(args.matchers[0], args.as_user))
    else:
        rows = ray.get(correlator.list_silences.remote(args.all))
        for s in rows:
            print(f"{s['silence_id']}  {s['state']:<8} {_fmt(s['starts_ts'])} → {_fmt(s['ends_ts'])}  "
                  f"{' '.join(s['matchers'])}  by {s['created_by']}: {s['comment']}")  # fmt: skip
        print(f"{len(rows)} silences")
        return 0
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 1 if "error" in result else 0


# ---- backtest ------------------------------------------------------------------------------


def cmd_backtest(args: argparse.Namespace, load_config: Callable[..., Any]) -> int:
    from app import backtest

    try:
        summary = backtest.run(
            args.ticks, args.accounts, args.positions, args.rules, args.out, specs=args.specs,
            step_ms=args.step_ms, screen=not args.no_screen, cache=args.cache,
            trading_day=args.trading_day, evaluate=args.evaluate, compare_rules=args.compare or (),
        )  # fmt: skip
    except (ValueError, FileNotFoundError) as exc:
        print(f"backtest error: {exc}", file=sys.stderr)
        return 2
    perf = summary.pop("perf")
    print(json.dumps({k: summary[k] for k in ("alerts", "suppressed", "by_severity", "first", "last")},
                     ensure_ascii=False))  # fmt: skip
    for rule, r in summary["by_rule"].items():
        print(
            f"  {rule:<40} {r['severity']:<9} {r['alerts']:>7} alerts  {r['keys']:>6} keys  {r['suppressed']:>5} suppressed"
        )
    print(f"{summary['inputs']['ticks']:,} ticks, {summary['inputs']['accounts']:,} accounts → "
          f"{args.out}/alerts.jsonl, summary.json; replay {perf['replay_s']} s "
          f"({perf['replay_ticks_per_s']:,} ticks/s), end to end {perf['end_to_end_ticks_per_s']:,} ticks/s")  # fmt: skip
    if "evaluation" in summary:
        from app.backtest_eval import print_evaluation

        print_evaluation(summary["evaluation"])
    return 0


def add_parsers(
    sub: Any, common: Callable[[argparse.ArgumentParser], None],
    load_config: Callable[[argparse.Namespace], Any],
) -> None:  # fmt: skip
    p = sub.add_parser(
        "rules", help="check, apply (hot reload), show rule sets; migrate old config tables"
    )
    common(p)
    p.add_argument("action", choices=("check", "apply", "show", "migrate"))
    p.add_argument("files", nargs="*", help="rules TOML files (check, apply); migrate: CONFIG")
    p.add_argument("--out", help="migrate: the rules file to write (default: standard output)")
    p.add_argument(
        "--as", dest="as_user", default=getpass.getuser(), help="who applies it (journaled)"
    )
    p.add_argument("--prefix", default="fengkong.")
    p.add_argument("--limit", type=int, default=20, help="show: history entries")
    p.set_defaults(func=lambda a: cmd_rules(a, load_config))

    p = sub.add_parser("silence", help="add, list or expire silences on a running system")
    common(p)
    p.add_argument("action", choices=("add", "list", "expire"))
    p.add_argument(
        "matchers", nargs="*", help="add: label matchers (key=ACC1, rule=~account\\..*); expire: ID"
    )
    p.add_argument("--comment", "--reason", dest="comment", help="why (required for add)")
    p.add_argument(
        "--duration", type=parse_duration, default=3600.0, help="90s, 30m, 2h, 1d (default 1h)"
    )
    p.add_argument("--start", type=parse_time, help="ISO time (default: now)")
    p.add_argument("--end", type=parse_time, help="ISO time (instead of --duration)")
    p.add_argument("--all", action="store_true", help="list: include expired silences")
    p.add_argument("--as", dest="as_user", default=getpass.getuser())
    p.add_argument("--prefix", default="fengkong.")
    p.set_defaults(func=lambda a: cmd_silence(a, load_config))

    p = sub.add_parser(
        "backtest", help="replay tick history through the rules; alerts.jsonl + summary"
    )
    p.add_argument(
        "--ticks", nargs="+", required=True, help="tick CSV files (.csv, .csv.gz) or folders"
    )
    p.add_argument("--accounts", required=True, help="account_id,group_path,pre_balance")
    p.add_argument(
        "--positions", required=True, help="account_id,contract,direction,volume,cost_price"
    )
    p.add_argument("--rules", nargs="+", required=True, help="rules TOML file(s)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--specs", help="contract specs override (CTP instrument table CSV or TOML)")
    p.add_argument(
        "--step-ms", type=int, default=500, help="data time between evaluations (CTP: 500)"
    )
    p.add_argument("--cache", help="folder for parsed tick columns (re-runs skip parsing)")
    p.add_argument("--trading-day", help="YYYYMMDD for tick files without one in their name")
    p.add_argument(
        "--no-screen", action="store_true", help="evaluate every step (slow; same output)"
    )
    p.add_argument(
        "--evaluate", action="store_true", help="judge the rules against crossings of 100%%"
    )
    p.add_argument("--compare", nargs="+", metavar="RULES_B", help="a second rule set to judge")
    p.set_defaults(func=lambda a: cmd_backtest(a, load_config))
