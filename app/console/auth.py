"""Who is asking, may they, and the journal line that says so.

`Desk` is what every route holds: the store (people, sessions, tokens), the system adapter and
the console settings. `Desk.who` resolves a request to a person — a session cookie (browser)
or a bearer API token (scripts, the CLI) — and `Desk.guard` checks role and CSRF for a
state-changing request. Every outcome, allowed or refused, becomes one `console.*` journal
record naming the person and the session, written through the AuditLog actor.
"""

from __future__ import annotations

import hmac
import logging
import time
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from app.console.store import ConsoleStore, LoginRefused, Session
from app.console.system import ConsoleSystem
from infra.console_config import ConsoleConfig
from rules.access import refusal

log = logging.getLogger(__name__)
COOKIE = "fk_session"
ACTOR = "Console"


@dataclass
class Who:
    name: str
    role: str
    ref: str  # session or token ref, as the journal names it
    csrf: str  # "" for token callers (no cookie, so no cross-site forgery to guard against)
    via: str  # "session" | "token"
    has_totp: bool = False

    def view(self) -> dict[str, str]:
        return {"name": self.name, "role": self.role, "csrf": self.csrf}


class Refused(Exception):
    """A request refused: `code` (upper-case reason) and an HTTP status."""

    def __init__(self, code: str, detail: str, status: int = 403) -> None:
        super().__init__(f"{code}: {detail}")
        self.code, self.detail, self.status = code, detail, status
        self.journaled = False  # guard journals its refusals; the app's handler does the rest


class Desk:
    def __init__(self, settings: ConsoleConfig, store: ConsoleStore, system: ConsoleSystem,
                 twilio_tokens: tuple[str, ...] = ()) -> None:  # fmt: skip
        self.settings = settings
        self.store = store
        self.system = system
        self.twilio_tokens = twilio_tokens
        self.secure_cookies = settings.url.startswith("https://")

    # ---- the journal ---------------------------------------------------------------------------

    def journal(self, action: str, who: Who | None, outcome: str, request: Request | None = None,
                durable: bool = False, **fields: Any) -> None:  # fmt: skip
        rec = {
            "kind": f"console.{action}",
            "actor": ACTOR,
            "key": who.name if who else fields.pop("person", ""),
            "ref": who.ref if who else "",
            "outcome": outcome,
            "via": who.via if who else "anonymous",
            "client": request.client.host if request is not None and request.client else "",
            "ts": time.time(),
            **fields,
        }
        try:
            (self.system.record_durable if durable else self.system.record)([rec])
        except Exception:  # the console must answer even when the journal actor restarts
            log.exception("console: could not journal %s", rec["kind"])

    # ---- identity ------------------------------------------------------------------------------

    def who(self, request: Request) -> Who:
        """The person behind a request, or Refused(NO_SESSION / SESSION_EXPIRED / BAD_TOKEN)."""
        auth = request.headers.get("authorization") or ""
        try:
            if auth.startswith("Bearer "):
                person, ref = self.store.token_person(auth[7:].strip())
                return Who(person.name, person.role, ref, "", "token", person.has_totp)
            session: Session = self.store.session(request.cookies.get(COOKIE, ""))
        except LoginRefused as exc:
            code, _, detail = str(exc).partition(": ")
            raise Refused(code, detail, 401) from None
        person = self.store.person(session.name)
        return Who(session.name, session.role, session.ref, session.csrf, "session",
                   bool(person and person.has_totp))  # fmt: skip

    def guard(self, request: Request, action: str, form: dict[str, Any] | None = None) -> Who:
        """who + role + CSRF for a state-changing request; each refusal is journaled."""
        try:
            who = self.who(request)
        except Refused as exc:
            self.journal(action, None, "refused", request, durable=True, code=exc.code,
                         reason=str(exc))  # fmt: skip
            exc.journaled = True
            raise
        if who.via == "session":
            given = (form or {}).get("csrf") or request.headers.get("x-csrf-token") or ""
            if not given or not hmac.compare_digest(str(given), who.csrf):
                self.refuse(request, action, who, "CSRF_MISSING" if not given else "CSRF_BAD",
                             "a state-changing request needs the session's CSRF token")  # fmt: skip
        why = refusal(who.role, action)
        if why:
            code, _, detail = why.partition(": ")
            self.refuse(request, action, who, code, detail)
        return who

    def refuse(self, request: Request, action: str, who: Who, code: str, detail: str) -> None:
        """Journal the refusal (durably, with the person and the session), then raise it as a 403."""
        self.journal(action, who, "refused", request, durable=True, code=code,
                     reason=f"{code}: {detail}")  # fmt: skip
        exc = Refused(code, detail, 403)
        exc.journaled = True
        raise exc
