"""The console's FastAPI application: login, the pages, live events, and the actions.

Pages are server-rendered (app/console/pages*.py); the live regions are refreshed by
server-sent events from `/events?topic=board|inbox|approvals`, one message every
`live_interval_s` (0.5 s by default, so the board is at most about a second behind the
shards). Actions are form posts carrying the session's CSRF token; each is journaled with the
person and the session. Provider callbacks, ack links and the approval API are in callbacks.py.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from importlib.resources import files
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.console import pages, pages_review
from app.console.auth import COOKIE, Desk, Refused, Who
from app.console.callbacks import add_callback_routes
from app.console.charts import account_chart
from app.console.store import LoginRefused
from rules.access import allowed

STATIC = {
    "echarts.min.js": (files("infra") / "static" / "echarts.min.js", "application/javascript"),
    "console.js": (files("app.console") / "static" / "console.js", "application/javascript"),
    "console.css": (files("app.console") / "static" / "console.css", "text/css"),
}


def _lang(request: Request) -> str:
    return "en" if request.cookies.get("lang") == "en" else "zh"


def create_app(desk: Desk) -> FastAPI:
    app = FastAPI(title="fengkong console", docs_url=None, redoc_url=None, openapi_url=None)

    cache: dict[str, bytes] = {}

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> Response:
        if not exc.journaled:  # a page or stream refused (no session, expired, unknown topic)
            desk.journal("view", None, "refused", request, code=exc.code, reason=str(exc),
                         path=request.url.path)  # fmt: skip
        if exc.status == 401 and "text/html" in request.headers.get("accept", ""):
            return RedirectResponse(f"/login?why={exc.code}", status_code=303)
        return Response(
            json.dumps({"error": exc.code, "detail": exc.detail}, ensure_ascii=False),
            status_code=exc.status, media_type="application/json",
        )  # fmt: skip

    @app.exception_handler(StarletteHTTPException)
    async def not_found(request: Request, exc: StarletteHTTPException) -> Response:
        code = "NOT_FOUND" if exc.status_code == 404 else "METHOD_NOT_ALLOWED"
        if exc.status_code not in (404, 405):
            code = "ERROR"
        return JSONResponse({"error": code, "detail": f"{request.method} {request.url.path}"},
                            status_code=exc.status_code)  # fmt: skip

    @app.exception_handler(RequestValidationError)
    async def malformed(request: Request, exc: RequestValidationError) -> Response:
        first = (exc.errors() or [{}])[0]
        where = ".".join(str(x) for x in first.get("loc", ()))
        return JSONResponse({"error": "MALFORMED", "detail": f"{where}: {first.get('msg', '')}"},
                            status_code=400)  # fmt: skip

    @app.get("/healthz")
    def healthz() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in STATIC:
            return PlainTextResponse("not found", status_code=404)
        path, kind = STATIC[name]
        if name not in cache:
            cache[name] = path.read_bytes()
        return Response(cache[name], media_type=kind,
                        headers={"Cache-Control": "max-age=3600"})  # fmt: skip

    @app.get("/lang")
    def lang(request: Request, to: str = "zh") -> Response:
        back = request.headers.get("referer") or "/board"
        resp = RedirectResponse(back if back.startswith(desk.settings.url) else "/board", 303)
        resp.set_cookie("lang", "en" if to == "en" else "zh", samesite="strict",
                        secure=desk.secure_cookies)  # fmt: skip
        return resp

    # ---- login ---------------------------------------------------------------------------------

    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, why: str = "") -> str:
        return pages.login_page(_lang(request), why)

    @app.post("/login")
    async def login(request: Request) -> Response:
        form = dict(await request.form())
        name = str(form.get("name", ""))[:100]
        try:
            person = await asyncio.to_thread(
                desk.store.check_password, name, str(form.get("password", "")),
                str(form.get("totp", "")),
            )  # fmt: skip
        except LoginRefused as exc:
            code = str(exc).partition(":")[0]
            desk.journal("login", None, "refused", request, durable=True, person=name,
                         code=code, reason=str(exc))  # fmt: skip
            return HTMLResponse(pages.login_page(_lang(request), str(exc)), status_code=401)
        session = desk.store.open_session(person)
        who = Who(person.name, person.role, session.ref, session.csrf, "session")
        desk.journal("login", who, "ok", request)
        resp = RedirectResponse("/board", status_code=303)
        resp.set_cookie(COOKIE, session.session_id, httponly=True, samesite="strict",
                        secure=desk.secure_cookies, max_age=int(desk.settings.session_max_s))  # fmt: skip
        return resp

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        form = dict(await request.form())
        who = desk.guard(request, "view", form)
        desk.store.close_session(request.cookies.get(COOKIE, ""))
        desk.journal("logout", who, "ok", request)
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(COOKIE)
        return resp

    # ---- pages ---------------------------------------------------------------------------------

    @app.get("/")
    def root() -> Response:
        return RedirectResponse("/board", status_code=303)

    def board_live(lang: str, group: str, by: str) -> str:
        by = by if by in ("risk_degree", "liquidation_distance") else "risk_degree"
        return pages.board_rows(lang, desk.system.top(desk.settings.board_rows, by, group))

    def inbox_live(lang: str, who: Who) -> str:
        return pages.inbox_rows(lang, who.view(), desk.system.alerts("all"),
                                allowed(who.role, "ack"))  # fmt: skip

    def approvals_live(lang: str, who: Who) -> str:
        return pages.approval_rows(
            lang, who.view(), desk.system.pending(), desk.system.groups(),
            allowed(who.role, "approve"), who.has_totp, desk.system.order_progress(),
        )  # fmt: skip

    @app.get("/board", response_class=HTMLResponse)
    def board(request: Request, group: str = "", by: str = "risk_degree") -> str:
        who, lang = desk.who(request), _lang(request)
        rollups = pages.rollup_rows(lang, desk.system.rollups())
        live = board_live(lang, group, by)
        return pages.board_page(lang, who.view(), live, group, by, rollups)

    @app.get("/account/{account_id}", response_class=HTMLResponse)
    def account(request: Request, account_id: str) -> Response:
        who, lang = desk.who(request), _lang(request)
        view = desk.system.account(account_id)
        if view is None:
            return HTMLResponse(pages.layout(lang, account_id, "<p class='error'>UNKNOWN_ACCOUNT"
                                             f": {pages.esc(account_id)}</p>", who.view()), 404)  # fmt: skip
        # the last day of its records (the newest 500), and the shard's figures now
        events = desk.system.journal(key=account_id, since=time.time() - 86_400.0)[-500:]
        chart = account_chart(view, events)
        return HTMLResponse(pages.account_page(lang, who.view(), view, events[-30:], chart))

    @app.get("/inbox", response_class=HTMLResponse)
    def inbox(request: Request) -> str:
        who, lang = desk.who(request), _lang(request)
        return pages.inbox_page(lang, who.view(), inbox_live(lang, who), desk.system.silences(),
                                allowed(who.role, "silence"))  # fmt: skip

    @app.get("/approvals", response_class=HTMLResponse)
    def approvals(request: Request, notice: str = "") -> str:
        who, lang = desk.who(request), _lang(request)
        return pages.approvals_page(lang, who.view(), approvals_live(lang, who), notice)

    @app.get("/review", response_class=HTMLResponse)
    def review(request: Request, subject: str = "") -> str:
        who, lang = desk.who(request), _lang(request)
        records = desk.system.journal(kinds=["proposal", "proposal_closed", "decision"])
        timeline = desk.system.journal(key=subject, limit=300) if subject else []
        if subject and not timeline:
            timeline = desk.system.journal(ref=subject, limit=300)
        return pages_review.review_page(lang, who.view(), desk.system.executor_stats(),
                                        pages_review.kpis(records), subject, timeline)  # fmt: skip

    @app.get("/rules", response_class=HTMLResponse)
    def rules(request: Request) -> str:
        who, lang = desk.who(request), _lang(request)
        changes = desk.system.journal(kind="rules*", limit=50)
        return pages_review.rules_page(lang, who.view(), desk.system.rules_info(), changes)

    @app.get("/books", response_class=HTMLResponse)
    def books(request: Request) -> str:
        who, lang = desk.who(request), _lang(request)
        return pages_review.books_page(lang, who.view(), desk.system.books())

    # ---- live ----------------------------------------------------------------------------------

    @app.get("/events")
    async def events(request: Request, topic: str, group: str = "", by: str = "") -> Response:
        who, lang = desk.who(request), _lang(request)
        render = {
            "board": lambda: board_live(lang, group, by),
            "inbox": lambda: inbox_live(lang, who),
            "approvals": lambda: approvals_live(lang, who),
        }.get(topic)
        if render is None:
            raise Refused("UNKNOWN_TOPIC", f"no live topic {topic!r}", 404)

        async def stream() -> Any:
            while not await request.is_disconnected():
                html = await asyncio.to_thread(render)
                yield f"data: {json.dumps({'html': html, 'ts': time.time()})}\n\n"
                await asyncio.sleep(desk.settings.live_interval_s)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store"})  # fmt: skip

    # ---- actions -------------------------------------------------------------------------------

    @app.post("/inbox/ack")
    async def ack(request: Request) -> Response:
        form = dict(await request.form())
        who = desk.guard(request, "ack", form)
        alert_id = str(form.get("alert_id", ""))
        result = await asyncio.to_thread(desk.system.ack, alert_id, who.name, "console")
        desk.journal("ack", who, result.get("error") or "ok", request, alert_id=alert_id)
        return RedirectResponse("/inbox", status_code=303)

    @app.post("/inbox/silence")
    async def silence(request: Request) -> Response:
        form = dict(await request.form())
        who = desk.guard(request, "silence", form)
        minutes = float(form.get("minutes") or 60)
        matchers = str(form.get("matcher", "")).split()
        result = await asyncio.to_thread(desk.system.silence, matchers, minutes * 60, who.name,
                                         str(form.get("reason", "")))  # fmt: skip
        desk.journal("silence", who, result.get("error") or "ok", request, matchers=matchers,
                     minutes=minutes)  # fmt: skip
        return RedirectResponse("/inbox", status_code=303)

    async def decision(request: Request, action: str) -> Response:
        form = dict(await request.form())
        who = desk.guard(request, action, form)
        if who.has_totp and not desk.store.check_totp(who.name, str(form.get("totp", ""))):
            desk.refuse(request, action, who, "BAD_TOTP", "re-enter the one-time code to decide")
        ids = [str(form["id"])] if form.get("id") else []
        group = str(form.get("group", ""))
        request_id = uuid.uuid4().hex
        result = await asyncio.to_thread(desk.system.decide, action, ids, group, who.name,
                                         str(form.get("reason", "")), request_id,
                                         who.ref)  # fmt: skip
        refused = [r for r in result.get("results", []) if r.get("refused")]
        outcome = result.get("refused") or ("partly refused" if refused else "ok")
        desk.journal(action, who, outcome, request, ids=ids, group=group, request_id=request_id,
                     decided=len(result.get("results", [])) - len(refused))  # fmt: skip
        done = len(result.get("results", [])) - len(refused)
        notice = f"{action}: {done} ok" + (f", {len(refused)} refused: "
                                           f"{refused[0]['refused']}" if refused else "")  # fmt: skip
        return RedirectResponse(f"/approvals?notice={quote(notice)}", status_code=303)

    @app.post("/approvals/approve")
    async def approve(request: Request) -> Response:
        return await decision(request, "approve")

    @app.post("/approvals/reject")
    async def reject(request: Request) -> Response:
        return await decision(request, "reject")

    add_callback_routes(app, desk)
    return app
