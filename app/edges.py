"""The edges of a deployed system, started before the risk loop that connects to them.

`[cluster] account_bus / order_gateway / market` name the edges `fengkong run` starts
(actors.edges); each binds on its node and publishes what it bound (`endpoints()`), and the
config handed to the risk loop is rewritten with those (`with_endpoints`), so nothing in a
cluster config needs to say where an edge will land. Order: the bus (nobody's client), the
market (pushes its accounts to the bus), the order gateway (reads the market, fills to the bus).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import ray

from actors.common import actor_name
from actors.edges import AccountBusEdge, OrderGatewayEdge, ReplayEdge, SimMarketEdge
from infra.cluster import Placement
from infra.config import Config

EDGE_ROLES = ("AccountBus", "SimMarket", "OrderGateway")  # start order
START_TIMEOUT_S = 120.0


def edge_roles(cfg: Config) -> list[str]:
    """The edge roles the config names, in start order."""
    c = cfg.cluster
    wanted = {"AccountBus": c.account_bus, "SimMarket": bool(c.market),
              "OrderGateway": c.order_gateway == "sim"}  # fmt: skip
    return [r for r in EDGE_ROLES if wanted[r]]


def with_endpoints(cfg: Config, endpoints: dict[str, str]) -> Config:
    """`cfg` with the endpoints the edges published (keys as in `endpoints()`)."""
    acc = {k.split(".", 1)[1]: v for k, v in endpoints.items() if k.startswith("accounts.")}
    orders = {k.split(".", 1)[1]: v for k, v in endpoints.items() if k.startswith("orders.")}
    feeds = tuple(
        dataclasses.replace(f, endpoint=endpoints.get(f"market.feeds.{f.name}", f.endpoint))
        for f in cfg.market.feeds
    )
    return dataclasses.replace(
        cfg,
        accounts=dataclasses.replace(cfg.accounts, **acc),
        orders=dataclasses.replace(cfg.orders, **orders),
        market=dataclasses.replace(cfg.market, feeds=feeds),
    )


def _options(placement: Placement | None, prefix: str, role: str) -> dict[str, Any]:
    extra = placement.options(role) if placement is not None else {}
    return {"name": actor_name(prefix, role), "get_if_exists": False, **extra}


def _make(cfg: Config, prefix: str, role: str, placement: Placement | None) -> Any:
    """One edge actor, wired to the endpoints known so far (`cfg`, already rewritten)."""
    c, opts = cfg.cluster, _options(placement, prefix, role)
    if role == "AccountBus":
        a = cfg.accounts
        eps = {"accounts.endpoint": a.endpoint, "accounts.snapshot_endpoint": a.snapshot_endpoint,
               "accounts.inbound_endpoint": a.inbound_endpoint}  # fmt: skip
        return AccountBusEdge.options(**opts).remote(eps, c.bind)
    if role == "SimMarket":
        feed = cfg.market.feeds[0]
        if c.market == "replay":
            return ReplayEdge.options(**opts).remote(
                feed.name, feed.endpoint, c.market_files, c.bind
            )
        return SimMarketEdge.options(**opts).remote(
            feed.name, feed.endpoint, cfg.accounts.inbound_endpoint, cfg.sim,
            cfg.contracts_overrides, cfg.accounts.margin_markup, c.bind,
        )  # fmt: skip
    return OrderGatewayEdge.options(**opts).remote(
        cfg.orders.endpoint, cfg.orders.reports_endpoint,
        [f.endpoint for f in cfg.market.feeds], cfg.accounts.inbound_endpoint,
        cfg.contracts_overrides, cfg.sim.seed, c.bind,
    )  # fmt: skip


def start_edges(
    cfg: Config, prefix: str, placement: Placement | None = None, keep: dict[str, Any] | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """Start (or keep, from `keep`) every edge the config names, in order; returns the handles
    by role and every endpoint they bound. An edge that cannot start raises (one line)."""
    handles: dict[str, Any] = {}
    endpoints: dict[str, str] = {}
    for role in edge_roles(cfg):
        wired = with_endpoints(cfg, endpoints)
        handle = (keep or {}).get(role) or _make(wired, prefix, role, placement)
        try:
            endpoints.update(ray.get(handle.endpoints.remote(), timeout=START_TIMEOUT_S))
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            raise RuntimeError(
                f"edge {role} did not start: {type(exc).__name__}: {first}"
            ) from None
        handles[role] = handle
    return handles, endpoints


def ask_endpoints(handles: dict[str, Any], timeout: float = 3.0) -> dict[str, str] | None:
    """The endpoints the edges publish now; None when one does not answer (restarting)."""
    try:
        found: dict[str, str] = {}
        for eps in ray.get([h.endpoints.remote() for h in handles.values()], timeout=timeout):
            found.update(eps)
        return found
    except Exception:
        return None


def stop_edges(handles: dict[str, Any]) -> None:
    """Close every edge's sockets, then kill it without restart (sources last)."""
    for role in reversed(EDGE_ROLES):
        handle = handles.get(role)
        if handle is None:
            continue
        try:
            ray.get(handle.stop.remote(), timeout=10)
        except Exception:  # a dead edge has nothing to close
            pass
        try:
            ray.kill(handle, no_restart=True)
        except Exception:
            pass
