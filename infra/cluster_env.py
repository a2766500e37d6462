"""Ray's environment before Ray is imported: token authentication on (issue 13 item 5).

Ray reads RAY_AUTH_MODE when it is imported (setting it later changes nothing), so the `fengkong`
command calls `token_auth_default()` before any command imports Ray. The operator's own setting
wins: RAY_AUTH_MODE=disabled opts out (then on both the cluster and every client). This module
imports nothing of Ray.
"""

from __future__ import annotations

import os

AUTH_MODE = "RAY_AUTH_MODE"


def token_auth_default() -> None:
    """RAY_AUTH_MODE=token unless already set."""
    os.environ.setdefault(AUTH_MODE, "token")
