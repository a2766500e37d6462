"""`fengkong people add|list|token|totp`: console accounts from the command line.

The password comes from FENGKONG_PASSWORD (scripts, tests) or is prompted twice without echo;
it is stored only as an argon2 hash. A token is printed once and stored as its digest.
"""

from __future__ import annotations

import argparse
import getpass
import os
import secrets
import sys
from collections.abc import Callable
from typing import Any

from app.console.store import ConsoleStore
from rules.access import ROLES
from rules.display import table


def _password(name: str) -> str:
    given = os.environ.get("FENGKONG_PASSWORD")
    if given:
        return given
    if not sys.stdin.isatty():
        raise ValueError("set FENGKONG_PASSWORD or run in a terminal to be prompted")
    first = getpass.getpass(f"password for {name}: ")
    if first != getpass.getpass("again: "):
        raise ValueError("the two passwords differ")
    return first


def cmd_people(args: argparse.Namespace, load_config: Callable[[Any], Any]) -> int:
    cfg = load_config(args)
    store = ConsoleStore(args.store or cfg.console.store_path)
    try:
        if args.action == "add":
            if not args.name:
                raise ValueError("people add needs a NAME")
            roster = {p.name: p.role for p in cfg.people}
            role = args.role or roster.get(args.name, "")
            if not role:
                raise ValueError(f"--role is needed ({args.name} is not on the [[people]] roster)")
            if args.name in roster and roster[args.name] != role:
                raise ValueError(f"the roster gives {args.name} the role {roster[args.name]!r}")
            person = store.add_person(args.name, role, _password(args.name))
            print(f"{person.name}: {person.role} (password stored as an argon2 hash)")
            if args.totp:
                print(
                    f"TOTP secret (enter it in an authenticator app): {store.enroll_totp(args.name)}"
                )
        elif args.action == "token":
            print(store.issue_token(args.name, args.label))
        elif args.action == "totp":
            print(store.enroll_totp(args.name))
        else:
            rows = [[p.name, p.role, "yes" if p.has_totp else ""] for p in store.people()]
            print(table(rows, ["name", "role", "TOTP"]))
        return 0
    except ValueError as exc:
        print(f"people: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()


DEMO_PEOPLE = (("demo-risk", "risk_officer"), ("demo-approver", "approver"))


def login_hint(cfg: Any, demo: bool = False) -> str:
    """The line `make run` / `fengkong run` print under the console's URL: who can log in.

    With `demo` and no [[people]] roster, two demo people (a risk officer and an approver, so
    four-eyes can be seen) get fresh random passwords each run, printed here once; otherwise it
    names the roster and how to give someone a password."""
    store = ConsoleStore(cfg.console.store_path)
    try:
        if demo and not cfg.people:
            logins = []
            for name, role in DEMO_PEOPLE:
                password = secrets.token_urlsafe(9)
                store.add_person(name, role, password)
                logins.append(f"{name} / {password} ({role})")
            return "log in as " + ", or ".join(logins) + " — demo passwords, new each run"
        known = [p.name for p in store.people() if p.role != "disabled"]
        if not known:
            return "nobody can log in yet: FENGKONG_PASSWORD=… fengkong people add NAME --role R"
        return f"log in as one of: {', '.join(known)} (passwords: fengkong people add NAME)"
    finally:
        store.close()


def add_parser(sub: Any, common: Callable[[Any], None], load_config: Callable[[Any], Any]) -> None:
    p = sub.add_parser("people", help="console accounts: add a person, list, API token, TOTP")
    common(p)
    p.add_argument("action", choices=("add", "list", "token", "totp"))
    p.add_argument("name", nargs="?", default="")
    p.add_argument("--role", choices=ROLES)
    p.add_argument("--totp", action="store_true", help="enroll a second factor (approvers)")
    p.add_argument("--label", default="cli", help="what the API token is for")
    p.add_argument("--store", help="console store file (default: console.store_path)")
    p.set_defaults(func=lambda a: cmd_people(a, load_config))
