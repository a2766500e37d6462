"""Ray bootstrap: a local Ray with its dashboard by default, or join a cluster by address.

Ray 2.60 enables token authentication by default; we keep it on. The token lives in
`~/.ray/auth_token` (or RAY_AUTH_TOKEN); `dashboard_hint` tells the operator how to use it.
"""

from __future__ import annotations

import os
from pathlib import Path

import ray

from infra.config import ClusterConfig


def start_ray(cluster: ClusterConfig, address: str | None = None, quiet: bool = True) -> str:
    """Start or join Ray; returns the dashboard URL ("" when unknown)."""
    if ray.is_initialized():
        return ""
    addr = address if address is not None else cluster.address
    kwargs: dict = {"namespace": cluster.namespace, "log_to_driver": not quiet}
    if addr:
        ctx = ray.init(address=addr, **kwargs)
    else:
        ctx = ray.init(
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
