"""`fengkong run / status / stop`: a deployed system owned by its supervisor actor, not the driver.

`run` resolves the config's relative paths against the config file's folder (so they mean
the same on every node), fixes the journal's path (the default is one file per run id, so a run
never adopts a demo's journal or its pending proposals), reads each role's secrets (and keeps
them out of the environment of a Ray it starts), joins (or starts) Ray in the config's namespace
with the job's runtime_env, creates the detached supervisor and, with --detach, exits.
`status`, `stop` and `endpoints` find the supervisor by name. Failures are one line.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from infra import config as config_mod
from infra.config import Config

DEFAULT_JOURNAL = config_mod.AuditConfig().path


def resolve_journal(cfg: Config, run_id: str, cwd: Path | None = None) -> Config:
    """The config with an absolute `audit.path`: relative paths resolve against the config
    file's folder; the shipped default becomes var/runs/<run_id>/journal.sqlite there."""
    src = Path(cfg.source) if cfg.source and Path(cfg.source).is_file() else None
    base = src.resolve().parent if src is not None else (cwd or Path.cwd()).resolve()
    path = cfg.audit.path
    if path == DEFAULT_JOURNAL:
        path = f"var/runs/{run_id}/journal.sqlite"
    p = Path(path)
    if not p.is_absolute():
        p = base / p
    return dataclasses.replace(cfg, audit=dataclasses.replace(cfg.audit, path=str(p)))


def _abs(base: Path, path: str) -> str:
    if not path:
        return path  # unset stays unset
    p = Path(path).expanduser()
    return str(p if p.is_absolute() else base / p)


def resolve_paths(cfg: Config, cwd: Path | None = None) -> Config:
    """Every relative file or folder of the config made absolute against the config file's
    folder, at load time: a path then means the same on every node (the image or working_dir
    must hold the file there). The journal's own path is `resolve_journal`'s."""
    src = Path(cfg.source) if cfg.source and Path(cfg.source).is_file() else None
    base = src.resolve().parent if src is not None else (cwd or Path.cwd()).resolve()
    c = cfg.cluster
    cluster = dataclasses.replace(
        c,
        working_dir=_abs(base, c.working_dir),
        secrets_file=_abs(base, c.secrets_file),
        market_files=tuple(_abs(base, f) for f in c.market_files),
    )
    return dataclasses.replace(
        cfg,
        cluster=cluster,
        contracts_overrides=tuple(_abs(base, f) for f in cfg.contracts_overrides),
        rules_files=tuple(_abs(base, f) for f in cfg.rules_files),
        approval=dataclasses.replace(
            cfg.approval, secrets_file=_abs(base, cfg.approval.secrets_file)
        ),
        books=dataclasses.replace(cfg.books, inputs_dir=_abs(base, cfg.books.inputs_dir)),
        market=dataclasses.replace(cfg.market, holidays_file=_abs(base, cfg.market.holidays_file)),
        console=dataclasses.replace(cfg.console, store_path=_abs(base, cfg.console.store_path)),
        audit=dataclasses.replace(cfg.audit, archive_dir=_abs(base, cfg.audit.archive_dir)),
    )


class _overlay:
    """The secrets in the driver's environment for the preflight only (it builds the channels
    as the Notifier will), then gone again."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env, self.saved = env, {k: os.environ.get(k) for k in env}

    def __enter__(self) -> None:
        os.environ.update(self.env)

    def __exit__(self, *exc: object) -> None:
        for k, v in self.saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _reason(exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first[:200]}"


def _join(
    args: argparse.Namespace, check: bool = False
) -> tuple[Config, dict[str, dict[str, str]]]:
    """Load the config and join (or start) Ray; with `check`, validate everything the config
    refers to first (rules files, channel secrets, files, cluster endpoints), so a mistake
    costs no Ray start. Returns the config and each role's secrets (infra.cluster.role_secrets).
    A Ray started here inherits this process's environment: the secrets leave it first."""
    from app.preflight import cluster_problems, preflight
    from infra.cluster import role_secrets, start_ray
    from infra.config import ConfigError

    path = getattr(args, "config", None)
    cfg = resolve_paths(config_mod.load(path) if path else config_mod.default())
    secrets: dict[str, dict[str, str]] = {}
    if check and cfg.approval.demo_open:  # issue 13 item 5: the open policy is the demo's only
        raise config_mod.ConfigError(
            f"{cfg.source}: approval.demo_open = true accepts unsigned decisions (any name when "
            "there is no roster); it is for `fengkong demo` only, not `fengkong run`"
        )
    if check and not cfg.approval.users:
        print("*** no [[approval.users]] roster: no one can approve or reject", file=sys.stderr)
    if check:
        found = cluster_problems(cfg, args.address)
        if found:
            raise ConfigError(f"{cfg.source}: " + "; ".join(found))
        secrets = role_secrets(cfg)
        with _overlay({k: v for role in secrets.values() for k, v in role.items()}):
            preflight(cfg)
        if not (args.address or cfg.cluster.address):
            for name in {k for role in secrets.values() for k in role}:
                os.environ.pop(name, None)
    start_ray(cfg.cluster, args.address)
    return cfg, secrets


def _supervisor(prefix: str):
    import ray

    from app.system_actor import supervisor_name

    return ray.get_actor(supervisor_name(prefix))


def _login_hint(cfg: Config) -> str:
    from app.console.people_cli import login_hint

    try:
        return login_hint(cfg)
    except Exception as exc:  # the store may be on the head node only: say so, go on
        return f"people: {_reason(exc)}"


def print_status(status: dict) -> None:
    print(f"run {status['run_id']}  journal {status['journal']}  rebuilds {status['rebuilds']}")
    for key, ep in sorted(status.get("endpoints", {}).items()):
        print(f"  endpoint {key:28} {ep}")
    for line in status.get("health", []):
        print(f"  health: {line}")
    print(f"  {'actor':40} {'node':16} {'state':11} rtt_ms")
    for row in status["actors"]:
        rtt = "" if row.get("rtt_ms") is None else row["rtt_ms"]
        print(f"  {row['name']:40} {row['node_ip']:16} {row['state']:11} {rtt}")
    for event in status["events"]:
        print(f"  event: {event}")


def cmd_run(args: argparse.Namespace) -> int:
    import ray

    from app.system_actor import SystemSupervisor, supervisor_name
    from infra.cluster import Placement, dashboard_hint

    try:
        cfg, secrets = _join(args, check=True)
    except Exception as exc:
        print(f"fengkong run: {_reason(exc)}")
        return 2
    print(f"Ray dashboard: (cluster dashboard) — {dashboard_hint()}")
    run_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    cfg = resolve_journal(cfg, run_id)
    name = supervisor_name(args.prefix)
    try:
        ray.get_actor(name)
        print(f"fengkong run: {name} is already running; `fengkong status` or `fengkong stop`")
        return 1
    except ValueError:
        pass
    # Pinned like the journal (a durable node), detached, unlimited restarts.
    opts = Placement(cfg.cluster, detached=True).options("Supervisor")
    sup = SystemSupervisor.options(name=name, **opts).remote(cfg, args.prefix, run_id, secrets)
    try:
        status = ray.get(sup.status.remote(), timeout=args.start_timeout)
    except Exception as exc:
        print(f"fengkong run: the system did not start: {_reason(exc)}")
        return 1
    if status.get("failed"):  # nothing of it is left running; the supervisor goes too
        print(f"fengkong run: the system did not start: {status['failed']}")
        ray.kill(sup, no_restart=True)
        return 1
    print_status(status)
    print(f"fengkong running ({cfg.source}); run {run_id}; journal {cfg.audit.path}")
    if cfg.console.enabled:
        print(f"console 风控台: {cfg.console.url}/login — {_login_hint(cfg)}")
    if args.detach:
        return 0
    deadline = time.time() + args.duration if args.duration else float("inf")
    try:
        while time.time() < deadline:
            time.sleep(min(5.0, max(0.0, deadline - time.time())))
            try:  # one lost call is a line, not a teardown
                rows = ray.get(sup.status.remote(), timeout=10)["actors"]
                alive = sum(r["state"] == "alive" for r in rows)
                print(f"{alive}/{len(rows)} actors alive")
            except Exception as exc:
                print(f"status: {_reason(exc)}")
    except KeyboardInterrupt:
        pass
    return _stop(sup)


def _stop(sup) -> int:
    import ray

    try:
        print(ray.get(sup.stop.remote(), timeout=120))
        ray.kill(sup, no_restart=True)
        return 0
    except Exception as exc:
        print(f"fengkong stop: {_reason(exc)}")
        return 1


def _ask_supervisor(verb: str, args: argparse.Namespace, call: Callable[[Any], int]) -> int:
    """Join the cluster, find the running system's supervisor and `call` it; no system, or any
    other failure, is one line naming the command (never a Ray traceback)."""
    try:
        _join(args)
        return call(_supervisor(args.prefix))
    except ValueError:
        print(f"fengkong {verb}: no fengkong system runs in this namespace (`fengkong run`)")
        return 1
    except Exception as exc:
        print(f"fengkong {verb}: {_reason(exc)}")
        return 1


def cmd_status(args: argparse.Namespace) -> int:
    import ray

    def status(supervisor: Any) -> int:
        print_status(ray.get(supervisor.status.remote(), timeout=30))
        return 0

    return _ask_supervisor("status", args, status)


def cmd_endpoints(args: argparse.Namespace) -> int:
    """The endpoints the running system's edges bound, one per line (for sources outside)."""
    import ray

    def endpoints(supervisor: Any) -> int:
        for key, ep in sorted(ray.get(supervisor.endpoints_of.remote(), timeout=30).items()):
            print(f"{key} {ep}")
        return 0

    return _ask_supervisor("endpoints", args, endpoints)


def cmd_stop(args: argparse.Namespace) -> int:
    return _ask_supervisor("stop", args, _stop)


def add_parsers(sub, common) -> None:
    p = sub.add_parser("run", help="deploy the config's actors on a (joined) Ray cluster")
    common(p)
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument("--detach", action="store_true", help="leave it running; the driver exits")
    p.add_argument("--prefix", default="fengkong.")
    p.add_argument("--start-timeout", type=float, default=300.0, help="seconds to wait for start")
    p.set_defaults(func=cmd_run)
    for name, func, helptext in (
        ("status", cmd_status, "every actor of the running system: node, state, round trip"),
        ("stop", cmd_stop, "stop the running system (journal flushed, actors killed)"),
        ("endpoints", cmd_endpoints, "the endpoints the running system's edges bound"),
    ):
        p = sub.add_parser(name, help=helptext)
        common(p)
        p.add_argument("--prefix", default="fengkong.")
        p.set_defaults(func=func)
