"""Where the approval workflow's secrets come from: one lookup for all of them.

A person's signing secret, the console's key and the deployment's seal key are each read from
an environment variable, else from `approval.secrets_file` (TOML outside the repository:
`"risk.zhang" = "..."`, `"@console" = "..."`, `"@seal" = "..."`). Before issue 13 the Executor
checked a person's variable alone to decide whether they sign, so a person whose secret lived
only in the file was treated as not signing and approved unsigned. Read when needed, never
logged, never journaled. Names starting with "@" are the deployment's own keys and never a
person's.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import sys
from collections.abc import Mapping
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CONSOLE = "@console"
SEAL = "@seal"


class SecretsFileError(ValueError):
    """The secrets file exists but cannot be read as TOML (its path and why, one line)."""


def _plain(approval: Any) -> Mapping[str, Any]:
    if dataclasses.is_dataclass(approval) and not isinstance(approval, type):
        return dataclasses.asdict(approval)
    return approval or {}


def _from_file(approval: Mapping[str, Any], name: str) -> str | None:
    path = str(approval.get("secrets_file") or "")
    if not path or not os.path.exists(path):
        return None
    try:
        with open(path, "rb") as fh:
            value = tomllib.load(fh).get(name)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SecretsFileError(f"approval.secrets_file {path}: {exc}") from None
    return str(value) if value else None


def person_secret(approval: Any, user: str) -> str | None:
    """A person's signing secret: their `secret_env` variable, else the secrets file."""
    a = _plain(approval)
    if not user or user.startswith("@"):
        return None
    for u in a.get("users", ()):
        if u.get("name") == user and u.get("secret_env") and os.environ.get(u["secret_env"]):
            return os.environ[u["secret_env"]]
    return _from_file(a, user)


def person_secret_source(approval: Any, user: str) -> str:
    """Where `person_secret` would look for `user` (for the CLI's one-line refusal)."""
    a = _plain(approval)
    env = next((u.get("secret_env") for u in a.get("users", ()) if u.get("name") == user), "")
    places = [f"${env}"] if env else []
    if a.get("secrets_file"):
        places.append(f"{a['secrets_file']} [{user}]")
    return " or ".join(places) or "no secret_env and no approval.secrets_file configured"


def console_key(approval: Any) -> str | None:
    """The console's per-deployment key (it vouches for its sessions' decisions)."""
    a = _plain(approval)
    env = str(a.get("console_key_env") or "")
    return (os.environ.get(env) if env else None) or _from_file(a, CONSOLE)


def seal_key(approval: Any, draw: bool = False) -> str | None:
    """The deployment's seal key for decision records; `draw`: a fresh random one when none is
    configured (it then lives only in the AuditLog's and the Executor's settings, so `audit
    verify` cannot check seals later: configure one to keep that proof)."""
    a = _plain(approval)
    env = str(a.get("seal_key_env") or "")
    key = (os.environ.get(env) if env else None) or _from_file(a, SEAL)
    if not key and draw:
        key = secrets.token_hex(32)
    return key
