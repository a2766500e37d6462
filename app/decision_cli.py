"""`fengkong approve` and `fengkong reject`: a decision by an authenticated person.

Issue 13 item 5: the options were declared twice and `--as` defaulted to the OS user, and a
person whose secret lived only in approval.secrets_file sent an unsigned request that the
Executor accepted. Now one option block (`decision_options`) and one path (`decision`): `--as`
must find that person's secret (one lookup, env or file: infra.approval_keys) to sign, or
`--token` decides through the console as that token's person. Errors are one line
(OperatorError, printed by app.cli.main).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from app.cli_output import OperatorError
from infra import config as config_mod


def decision_options(p: argparse.ArgumentParser, action: str) -> None:
    """The options of `approve` and `reject`, declared once: who decides and how they prove it.
    No default person (it was the OS user, silently)."""
    p.add_argument("--group", default="", help=f"{action} every pending proposal of this group")
    p.add_argument("--reason", default="")
    who = p.add_mutually_exclusive_group()
    who.add_argument("--as", dest="as_user", default="",
                     help="the person deciding; signs with their secret (its variable, or "
                          "approval.secrets_file)")  # fmt: skip
    who.add_argument(
        "--token", default="", help="a console person's API token: decide through the console"
    )
    p.add_argument("--secret-env", help="variable holding your signing secret (overrides)")
    p.add_argument(
        "--demo",
        action="store_true",
        help="send unsigned when no secret is found (only `fengkong demo` accepts)",
    )
    p.add_argument("--prefix", default="fengkong.")


def decision(
    args: argparse.Namespace, action: str, ids: list[str],
    load_config: Callable[[argparse.Namespace], config_mod.Config],
    executor: Callable[[argparse.Namespace], Any],
) -> int:  # fmt: skip
    """Send a decision request by an authenticated person (issue 13 item 5): signed with
    `--as`'s secret (their variable or approval.secrets_file: one lookup), or through the
    console with `--token` (a console person's API token). Nothing else: `--demo` sends it
    unsigned, which only `fengkong demo`'s open policy accepts."""
    import os
    import uuid

    from infra.approval_keys import person_secret, person_secret_source
    from rules.approval import sign_request

    cfg = load_config(args)
    fields = {
        "action": action,
        "user": args.as_user or "",
        "ids": ids,
        "group": getattr(args, "group", "") or "",
        "reason": args.reason or "",
        "ts": round(time.time(), 3),
        "request_id": uuid.uuid4().hex,
    }
    if args.token:
        out = _console_decision(cfg, args.token, fields)
    else:
        if not args.as_user:
            raise OperatorError(
                f"{action}: who decides? give --as NAME (their signing secret in its variable "
                "or approval.secrets_file) or --token TOKEN (a console person's API token)"
            )
        if args.secret_env:
            secret = os.environ.get(args.secret_env) or None
        else:
            secret = person_secret(cfg.approval, args.as_user)
        if not secret and not args.demo:
            where = f"${args.secret_env}" if args.secret_env else (
                person_secret_source(cfg.approval, args.as_user)
            )  # fmt: skip
            raise OperatorError(
                f"{action} --as {args.as_user}: no signing secret for {args.as_user} "
                f"(looked in {where}); refusing to send an unsigned decision"
            )
        if not secret:
            print(f"*** {action} --demo: UNSIGNED, accepted only by `fengkong demo` "
                  "(approval.demo_open)", file=sys.stderr)  # fmt: skip
        signature = sign_request(secret, **fields) if secret else ""
        request = {**fields, "signature": signature, "via": "cli"}
        out = ray_get(executor(args).decide.remote(request))
    print(json.dumps(out, indent=2, ensure_ascii=False))
    return 1 if out.get("refused") or any("refused" in r for r in out.get("results", ())) else 0


def ray_get(ref: Any) -> Any:
    import ray

    return ray.get(ref)


def _console_decision(cfg: config_mod.Config, token: str, fields: dict[str, Any]) -> Any:
    """POST the decision to the console's API as the token's person (the console signs it)."""
    import urllib.error
    import urllib.request

    body = {k: fields[k] for k in ("action", "ids", "group", "reason", "request_id")}
    url = f"{cfg.console.url}/api/decisions"
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        try:
            detail = json.loads(exc.read())
        except ValueError:
            detail = {}
        if exc.code == 409 and isinstance(detail, dict) and "results" in detail:
            return detail  # the Executor refused: its reply, with the reason codes
        why = detail.get("error") or detail.get("detail") or exc.reason
        raise OperatorError(f"console {url}: HTTP {exc.code}: {why}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise OperatorError(f"console {url}: not reachable ({exc})") from None
