"""Ray bootstrap: a local Ray with its dashboard by default, or join a cluster by address.

Token authentication is on: the `fengkong` command sets RAY_AUTH_MODE=token before Ray is
imported unless the operator set it (`disabled` opts out); Ray writes a token to
`~/.ray/auth_token` on a local start (or reads RAY_AUTH_TOKEN); `dashboard_hint` tells the
operator how to use it. A local Ray advertises `[cluster] node_ip_address` (default 127.0.0.1)
and its dashboard binds on `dashboard_host` (default 127.0.0.1); docs/deploy.md lists the ports.
"""

from __future__ import annotations

import os
from pathlib import Path

import ray

from infra.config import ClusterConfig

LOOPBACK = "127.0.0.1"


def _local_start(node_ip: str, **kwargs: object) -> object:
    """`ray.init` of a new local Ray advertising `node_ip`. Ray on Linux replaces a loopback
    address by the machine's routable one (services.resolve_ip_for_localhost) unless its
    single-machine mode is on, so for 127.0.0.1 that mode is switched on for the start only.
    Ray's gRPC servers still listen on every interface: token authentication guards them, and
    docs/deploy.md lists the ports to firewall."""
    if node_ip != LOOPBACK:
        return ray.init(_node_ip_address=node_ip, **kwargs)
    from ray._private import ray_constants

    saved = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        return ray.init(**kwargs)
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved


def start_ray(cluster: ClusterConfig, address: str | None = None, quiet: bool = True) -> str:
    """Start or join Ray; returns the dashboard URL ("" when unknown)."""
    if ray.is_initialized():
        return ""
    addr = address if address is not None else cluster.address
    kwargs: dict = {"namespace": cluster.namespace, "log_to_driver": not quiet}
    if addr:
        if cluster.node_ip_address:
            kwargs["_node_ip_address"] = cluster.node_ip_address
        ctx = ray.init(address=addr, **kwargs)
    else:
        # on the configured interface (loopback unless told), the dashboard on its own host
        ctx = _local_start(
            cluster.node_ip_address or LOOPBACK,
            include_dashboard=True,
            dashboard_host=cluster.dashboard_host,
            dashboard_port=cluster.dashboard_port,
            **kwargs,
        )
    url = getattr(ctx, "dashboard_url", "") or ""
    if url and not url.startswith("http"):
        url = "http://" + url
    return url


def dashboard_hint() -> str:
    token_path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH", Path.home() / ".ray" / "auth_token"))
    if os.environ.get("RAY_AUTH_MODE", "").lower() == "disabled":
        return "token authentication is disabled (RAY_AUTH_MODE=disabled)"
    if token_path.exists():
        return f"the dashboard asks for the Ray auth token: paste the contents of {token_path}"
    return "the dashboard asks for the Ray auth token (RAY_AUTH_TOKEN or ~/.ray/auth_token)"


JOURNAL_ROLES = frozenset({"AuditLog", "Executor", "Notifier"})  # stateful singletons


class Placement:
    """Ray options per role from `[cluster]`: CPUs, custom resources (only those the cluster
    offers, so one laptop runs the same config), SPREAD for shards, and for a deployed system
    `lifetime="detached"` with an unlimited restart budget (the driver does not own the actors)."""

    def __init__(
        self,
        cluster: ClusterConfig,
        detached: bool = False,
        offered: dict[str, float] | None = None,
    ) -> None:
        self.cluster = cluster
        self.detached = detached
        self.offered = dict(offered if offered is not None else ray.cluster_resources())

    def _resource(self, name: str) -> dict[str, float]:
        # A small fraction: a labelled node hosts several actors of its role.
        return {name: 0.01} if name and self.offered.get(name, 0) > 0 else {}

    def options(self, role: str) -> dict:
        """The `.options(...)` keywords for an actor of `role` (besides its name)."""
        opts: dict = {"num_cpus": float(self.cluster.num_cpus.get(role, 0.0))}
        if role == "AccountShard":
            resources = self._resource(self.cluster.shard_resource)
            opts["scheduling_strategy"] = "SPREAD"
        elif role in JOURNAL_ROLES:
            resources = self._resource(self.cluster.journal_resource)
        else:
            resources = {}
        if resources:
            opts["resources"] = resources
        if self.detached:
            opts["lifetime"] = "detached"
            opts["max_restarts"] = -1
        return opts
