"""The console as a Ray Serve application ("fengkong-console"), placed next to the actors.

`deploy_console(cfg, prefix, namespace)` starts Serve's HTTP proxy on console.host/port, runs
one replica of the FastAPI app and returns the public URL (console.public_url, or the local
address). The replica finds the actors by name, so it survives their restarts and they survive
its. It reserves no CPU, like the actors, so a 2-core machine places it.
"""

from __future__ import annotations

import os
from typing import Any

import ray
from ray import serve

from app.console.auth import Desk
from app.console.store import ConsoleStore
from app.console.system import ConsoleSystem
from app.console.web import create_app
from infra.approval_keys import console_key
from infra.config import Config
from rules.access import LockoutPolicy, SessionPolicy

APP_NAME = "fengkong-console"


def _twilio_tokens(cfg: Config) -> tuple[str, ...]:
    """Auth tokens of the Twilio channels (their variables, or a literal on loopback)."""
    out = []
    for ch in cfg.channels:
        if ch.type in ("twilio_sms", "twilio_voice"):
            token = os.environ.get(str(ch.settings.get("auth_token_env", ""))) or ch.settings.get(
                "auth_token", ""
            )
            if token:
                out.append(str(token))
    return tuple(out)


def build_desk(cfg: Config, prefix: str, namespace: str | None, commodities: list[str]) -> Desk:
    c = cfg.console
    store = ConsoleStore(
        c.store_path,
        LockoutPolicy(c.lockout_failures, c.lockout_window_s, c.lockout_s),
        SessionPolicy(c.session_idle_s, c.session_max_s),
    )
    store.sync_roster([{"name": p.name, "role": p.role} for p in cfg.people])
    system = ConsoleSystem(prefix, namespace, cfg.accounts.shards, commodities,
                           console_key=console_key(cfg.approval) or "")  # fmt: skip
    return Desk(c, store, system, twilio_tokens=_twilio_tokens(cfg))


class DeskSlot:
    """Stands in for the Desk in the routes until the replica builds the real one: the app is
    pickled to the replica with its routes, and a Desk (SQLite connection, locks) is not."""

    def __init__(self) -> None:
        object.__setattr__(self, "_real", None)

    def fill(self, desk: Desk) -> None:
        object.__setattr__(self, "_real", desk)

    def __getattr__(self, name: str) -> Any:
        real = object.__getattribute__(self, "_real")
        if real is None:
            raise RuntimeError("the console replica has not built its desk yet")
        return getattr(real, name)

    def __reduce__(self) -> tuple:
        # Unpickled in the replica as that process's own slot, which __init__ fills.
        return (desk_slot, ())


_SLOT = DeskSlot()


def desk_slot() -> DeskSlot:
    return _SLOT


def make_deployment(
    cfg: Config, prefix: str, namespace: str | None, commodities: list[str],
    env: dict[str, str] | None = None,
) -> Any:  # fmt: skip
    """The bound Serve application: one replica that builds its desk where it runs. `env`: the
    console's own secrets (infra.cluster.role_secrets "Console"), in its replica only."""
    app = create_app(desk_slot())  # type: ignore[arg-type]
    options: dict[str, Any] = {"num_cpus": 0}
    if env:
        options["runtime_env"] = {"env_vars": dict(env)}

    @serve.deployment(name="Console", num_replicas=1, ray_actor_options=options,
                      max_ongoing_requests=64)  # fmt: skip
    @serve.ingress(app)
    class Console:
        def __init__(self, args: tuple) -> None:
            desk_slot().fill(build_desk(*args))

    return Console.bind((cfg, prefix, namespace, list(commodities)))


def deploy_console(
    cfg: Config, prefix: str = "fengkong.", namespace: str | None = None,
    commodities: list[str] | None = None, env: dict[str, str] | None = None,
) -> str:  # fmt: skip
    """Deploy (or redeploy) the console; returns its public URL."""
    c = cfg.console
    ns = namespace or ray.get_runtime_context().namespace
    serve.start(http_options={"host": c.host, "port": c.port})
    serve.run(
        make_deployment(cfg, prefix, ns, list(commodities or cfg.books.commodities), env),
        name=APP_NAME, route_prefix="/", blocking=False,
    )  # fmt: skip
    return c.url


def stop_console() -> None:
    try:
        serve.delete(APP_NAME)
    except Exception:  # Serve already down: nothing to delete
        pass
