"""Everything a start needs, checked before Ray starts (issue 19): the rule set of the config
(every `rules_files` entry read and validated), each notification channel built as the Notifier
would build it (a literal secret for a real provider, an unset environment variable: refused
here, not as an ActorDiedError half a minute in), and the files the config refers to.

A config that loads is already validated field by field (infra.config); this is what only
reading the referenced files and building the edges shows. Each problem is one line naming the
key and why; all of them are reported at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from infra.config import Config, ConfigError


def problems(cfg: Config) -> list[str]:
    """Every problem found, one line each; [] when the config can start."""
    from gateways.channels import build_channel
    from infra import rulesets

    out: list[str] = []
    for path in getattr(cfg, "rules_files", ()) or ():
        if not Path(path).is_file():
            out.append(f"rules_files: {path}: file not found")
    if not out:
        try:
            rulesets.for_config(cfg)
        except Exception as exc:  # RulesetError and whatever a bad file raises: one line each
            out.append(f"rules: {_line(exc)}")
    for c in cfg.channels:
        block: dict[str, Any] = {"name": c.name, "type": c.type, **c.settings}
        try:
            channel = build_channel(block)
        except Exception as exc:
            out.append(f"channels ({c.name}): {_line(exc)}")
            continue
        close = getattr(channel, "close", None)
        if callable(close):
            try:
                close()
            except Exception:  # a channel that was never used has nothing to flush
                pass
    secrets_file = cfg.approval.secrets_file
    if secrets_file and not Path(secrets_file).is_file():
        out.append(f"approval.secrets_file: {secrets_file}: file not found")
    return out


def preflight(cfg: Config) -> None:
    """Raise ConfigError (one line: every problem, `;`-separated) unless the config can start."""
    found = problems(cfg)
    if found:
        raise ConfigError(f"{cfg.source}: " + "; ".join(found))


def _line(exc: BaseException) -> str:
    lines = [x.strip() for x in str(exc).splitlines() if x.strip()]
    return lines[0] if lines else type(exc).__name__


LOOPBACK_HOSTS = ("127.", "localhost", "[::1]", "::1")
LOCAL_HEADS = ("", "auto", "local")


def _remote_head(address: str) -> bool:
    """A `[cluster] address` (or --address) that names a head on another host."""
    if address in LOCAL_HEADS:
        return False
    host = address.removeprefix("ray://").rsplit(":", 1)[0].strip("[]")
    return not host.startswith(LOOPBACK_HOSTS)


def cluster_problems(cfg: Config, address: str | None = None) -> list[str]:
    """A cluster config must not say 127.0.0.1: a shard on another host would connect to
    itself and silently get no accounts. Refused (one line per key) when the head is remote.
    The endpoints of an edge `fengkong run` starts are not checked: only their port is used
    (the edge binds on its node and publishes the address), `tcp://*:PORT` says so."""
    head = address if address is not None else cfg.cluster.address
    if not _remote_head(head or ""):
        return []
    keys = {
        "accounts.endpoint": cfg.accounts.endpoint,
        "accounts.snapshot_endpoint": cfg.accounts.snapshot_endpoint,
        "accounts.inbound_endpoint": cfg.accounts.inbound_endpoint,
        "orders.endpoint": cfg.orders.endpoint,
        "orders.reports_endpoint": cfg.orders.reports_endpoint,
        "books.inputs_endpoint": cfg.books.inputs_endpoint,
    }
    keys.update({f"market.feeds[{f.name}].endpoint": f.endpoint for f in cfg.market.feeds})
    c = cfg.cluster
    started = (["accounts."] if c.account_bus else []) + (["orders."] if c.order_gateway else [])
    if c.market and cfg.market.feeds:
        started.append(f"market.feeds[{cfg.market.feeds[0].name}]")
    keys = {k: v for k, v in keys.items() if not k.startswith(tuple(started))}
    if cfg.console.enabled:  # the URL pages link to and `fengkong run` prints
        keys["console.public_url"] = cfg.console.url.removeprefix("http://").removeprefix(
            "https://"
        )
    return [
        f"{key}: {ep} is a loopback address, unreachable from the other hosts of {head}"
        for key, ep in keys.items()
        if ep and ep.removeprefix("tcp://").startswith(LOOPBACK_HOSTS)
    ]
