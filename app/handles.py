"""Handles on a running system for the commands: join its Ray cluster, find its actors by name.

One place, so every command joins the same way (the config's address or "auto", its namespace,
no driver logs) and the commands need not import one another.
"""

from __future__ import annotations

import argparse
from typing import Any

from infra import config as config_mod


def load_config(args: argparse.Namespace) -> config_mod.Config:
    path = getattr(args, "config", None)
    return config_mod.load(path) if path else config_mod.default()


def join(args: argparse.Namespace, cfg: config_mod.Config) -> None:
    import ray

    if not ray.is_initialized():
        address = getattr(args, "address", None) or cfg.cluster.address or "auto"
        ray.init(address=address, namespace=cfg.cluster.namespace, log_to_driver=False)


def executor(args: argparse.Namespace) -> Any:
    import ray

    from actors.common import actor_name

    cfg = load_config(args)
    join(args, cfg)
    return ray.get_actor(actor_name(args.prefix, "Executor"))


def shards(args: argparse.Namespace) -> list[Any]:
    import ray

    from actors.common import actor_name

    cfg = load_config(args)
    join(args, cfg)
    return [
        ray.get_actor(actor_name(args.prefix, "AccountShard", str(k)))
        for k in range(cfg.accounts.shards)
    ]
