"""Ray bootstrap: a local Ray with its dashboard by default, or join a cluster by address.

Token authentication is on: the `fengkong` command sets RAY_AUTH_MODE=token before Ray is
imported unless the operator set it (`disabled` opts out); Ray writes a token to
`~/.ray/auth_token` on a local start (or reads RAY_AUTH_TOKEN); `dashboard_hint` tells the
operator how to use it. A local Ray advertises `[cluster] node_ip_address` (default 127.0.0.1)
and its dashboard binds on `dashboard_host` (default 127.0.0.1); docs/deploy.md lists the ports.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ray

from infra.config import ClusterConfig, ConfigError

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
    env = job_runtime_env(cluster)
    if env:
        kwargs["runtime_env"] = env
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


# Stateful singletons, pinned to the nodes labelled for durable storage: the journal, the
# actors whose outbox it holds, and the edges whose endpoints everyone else connects to.
JOURNAL_ROLES = frozenset(
    {"AuditLog", "Executor", "Notifier", "AccountBus", "OrderGateway", "Supervisor"}
)
EDGE_ROLES = frozenset({"SimMarket", "CtpIngest"})  # market edges: `edge_resource` nodes


class Placement:
    """Ray options per role from `[cluster]`: CPUs, custom resources (only those the cluster
    offers, so one laptop runs the same config), SPREAD for shards, and for a deployed system
    `lifetime="detached"` with an unlimited restart budget (the driver does not own the actors).
    `secrets` maps a role to the environment variables only its actors get (`role_secrets`)."""

    def __init__(
        self,
        cluster: ClusterConfig,
        detached: bool = False,
        offered: dict[str, float] | None = None,
        secrets: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        self.cluster = cluster
        self.detached = detached
        self.offered = dict(offered if offered is not None else ray.cluster_resources())
        self.secrets: dict[str, dict[str, str]] = {k: dict(v) for k, v in (secrets or {}).items()}

    def _resource(self, name: str) -> dict[str, float]:
        # A small fraction: a labelled node hosts several actors of its role.
        return {name: 0.01} if name and self.offered.get(name, 0) > 0 else {}

    def options(self, role: str) -> dict:
        """The `.options(...)` keywords for an actor of `role` (besides its name)."""
        opts: dict = {"num_cpus": float(self.cluster.num_cpus.get(role, 0.0))}
        own = self.secrets.get(role)
        if own:  # only this role's secrets, in this actor's workers only
            opts["runtime_env"] = {"env_vars": dict(own)}
        if role == "AccountShard":
            resources = self._resource(self.cluster.shard_resource)
            opts["scheduling_strategy"] = "SPREAD"
        elif role in JOURNAL_ROLES:
            resources = self._resource(self.cluster.journal_resource)
        elif role in EDGE_ROLES:
            resources = self._resource(self.cluster.edge_resource)
        else:
            resources = {}
        if resources:
            opts["resources"] = resources
        if self.detached:
            opts["lifetime"] = "detached"
            opts["max_restarts"] = -1
            if role == "AuditLog":
                # A call to a journal whose node is lost waits for it to come back (Ray retries
                # it on the restarted actor, as often as it takes) instead of failing after 3
                # tries: a fire-and-forget sender never learns of that failure, and its records
                # were lost (the journal-loss drill: 115 of the Correlator's). A copy that did
                # land is dropped by its number (actors/audit_log.py).
                opts["max_task_retries"] = -1
        return opts


def job_runtime_env(cluster: ClusterConfig) -> dict[str, Any]:
    """The job's runtime_env from `[cluster]`: the working_dir shipped to every node and the
    plain variables every worker gets. Never a secret: those go per actor (`role_secrets`)."""
    env: dict[str, Any] = {}
    if cluster.working_dir:
        env["working_dir"] = cluster.working_dir
    if cluster.env_vars:
        env["env_vars"] = {str(k): str(v) for k, v in cluster.env_vars.items()}
    return env


def bind_host(bind: str = "") -> str:
    """The address an edge binds on: "" the node's IP as Ray knows it, an IP literal as given,
    else the first IPv4 address of the interface of that name (eth0)."""
    if not bind:
        return ray.util.get_node_ip_address()
    try:
        return str(ipaddress.ip_address(bind))
    except ValueError:
        pass
    import socket

    import psutil  # a dependency of Ray

    for addr in psutil.net_if_addrs().get(bind, []):
        if addr.family == socket.AF_INET:
            return addr.address
    raise ConfigError(f"cluster.bind: no interface {bind!r} with an IPv4 address on this node")


def port_of(endpoint: str) -> int:
    """The port of `tcp://host:port` (the host is where the edge binds, decided on its node)."""
    try:
        return int(endpoint.rsplit(":", 1)[1])
    except (IndexError, ValueError):
        raise ConfigError(f"endpoint {endpoint!r}: expected tcp://host:port") from None


def read_secrets_file(path: str) -> dict[str, str]:
    """KEY=VALUE lines (blank lines and # comments skipped; optional quotes), as a Kubernetes
    Secret mounted as a file or a docker env-file. A bad line names its number, never its value."""
    out: dict[str, str] = {}
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise ConfigError(f"cluster.secrets_file: {path}: file not found") from None
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        if not sep or not key.strip().isidentifier():
            raise ConfigError(f"cluster.secrets_file: {path}:{n}: expected KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out[key.strip()] = value
    return out


def _env_names(block: Any) -> set[str]:
    """Every value of a `*_env` key in a (nested) config block: the variables it reads."""
    if dataclasses.is_dataclass(block) and not isinstance(block, type):
        block = {f.name: getattr(block, f.name) for f in dataclasses.fields(block)}
    names: set[str] = set()
    if isinstance(block, Mapping):
        for key, value in block.items():
            if str(key).endswith("_env") and isinstance(value, str) and value:
                names.add(value)
            else:
                names |= _env_names(value)
    elif isinstance(block, (list, tuple)):
        for item in block:
            names |= _env_names(item)
    return names


def secret_names(cfg: Any) -> dict[str, set[str]]:
    """The environment variables each role reads, by role (issue 13 item 7: each actor only its
    own): the Notifier its channels' `*_env` keys, the CTP edge its sessions', the Executor the
    approval secrets (people's `secret_env`, `console_key_env`, `seal_key_env`: it checks every
    signature and seals decision records), the console (role "Console", the Serve replica) the
    console's key it vouches for its sessions with and the Twilio tokens it checks callbacks
    against."""
    out: dict[str, set[str]] = {}
    channels = set().union(*(_env_names(dict(c.settings)) for c in cfg.channels))
    if channels:
        out["Notifier"] = channels
    ctp = getattr(cfg, "edges", {}).get("ctp")
    if ctp is not None and _env_names(ctp):
        out["CtpIngest"] = _env_names(ctp)
    approval = getattr(cfg, "approval", None)
    if approval is not None and _env_names(approval):
        out["Executor"] = _env_names(approval)
    console = getattr(cfg, "console", None)
    if console is not None and getattr(console, "enabled", False):
        wanted = {str(getattr(approval, "console_key_env", "") or "")}
        wanted |= {str(c.settings.get("auth_token_env", "")) for c in cfg.channels
                   if c.type in ("twilio_sms", "twilio_voice")}  # fmt: skip
        if wanted - {""}:
            out["Console"] = wanted - {""}
    return out


def role_secrets(cfg: Any, environ: Mapping[str, str] | None = None) -> dict[str, dict[str, str]]:
    """Each role's secrets: from `[cluster] secrets_file` first, then `environ` (the driver's
    environment). A variable found in neither is left out (preflight names what a channel needs),
    and so is a role left with none."""
    env = dict(os.environ if environ is None else environ)
    if cfg.cluster.secrets_file:
        env = {**env, **read_secrets_file(cfg.cluster.secrets_file)}
    found = {
        role: {n: env[n] for n in sorted(names) if n in env}
        for role, names in secret_names(cfg).items()
    }
    return {role: values for role, values in found.items() if values}
