"""Routes for callers that are not in a browser session: reply links, Twilio, the API.

These were the stdlib operator servers' (gone since issue 16); the Notifier names this
console's URL in its links and in the callbacks it gives Twilio. Checks: a reply link's token
is hashed and looked up among the page's `notification.link` records (rules.notify.links: the
journal holds digests, never a working link); Twilio's RequestValidator on
`X-Twilio-Signature`; and for the API (alerts, acks, proposals, decisions) a person's bearer API
token, so every call is attributable to an authenticated person and refused by role otherwise.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any
from xml.sax.saxutils import escape

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from twilio.request_validator import RequestValidator

from app.console.auth import Desk, Refused
from rules.notify.links import LINK_KIND, TOKEN_PARAM, check_link


def _twiml(*says: tuple[str, str]) -> Response:
    parts = "".join(f'<Say language="{lang}">{escape(text)}</Say>' for lang, text in says)
    xml = f'<?xml version="1.0" encoding="UTF-8"?><Response>{parts}<Hangup/></Response>'
    return Response(xml, media_type="text/xml; charset=utf-8")


TEXT_FIELDS = ("action", "group", "reason", "request_id")


def malformed_decision(data: Any) -> str | None:
    """Why a decision body is not one (one line), None when its fields are typed right: checked
    before anything reaches the Executor (the old approval server's hostile-input checks)."""
    if not isinstance(data, dict):
        return "body must be a JSON object with ids: [...]"
    ids = data.get("ids", [])
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        return "ids must be a list of proposal ids (strings)"
    for name in TEXT_FIELDS:
        if name in data and not isinstance(data[name], str):
            return f"{name} must be a string, not {type(data[name]).__name__}"
    if not ids and not data.get("group"):
        return "name the proposals (ids) or a batch group (group)"
    return None


def add_callback_routes(app: FastAPI, desk: Desk) -> None:
    async def twilio_form(request: Request) -> dict[str, str]:
        form = {k: str(v) for k, v in (await request.form()).items()}
        signature = request.headers.get("x-twilio-signature", "")
        url = (
            desk.settings.url
            + request.url.path
            + (f"?{request.url.query}" if request.url.query else "")
        )
        if not signature or not any(
            RequestValidator(token).validate(url, form, signature) for token in desk.twilio_tokens
        ):
            desk.journal("twilio", None, "refused", request, durable=True, code="BAD_SIGNATURE",
                         person="twilio")  # fmt: skip
            raise Refused("BAD_SIGNATURE", "X-Twilio-Signature missing or invalid", 403)
        return form

    @app.get("/ack/{alert_id}")
    async def ack_link(request: Request, alert_id: str) -> Response:
        token = request.query_params.get(TOKEN_PARAM, "")
        if not token:
            desk.journal("ack_link", None, "refused", request, durable=True, code="MALFORMED",
                         alert_id=alert_id)  # fmt: skip
            raise Refused("MALFORMED", f"a reply link carries ?{TOKEN_PARAM}=<token>", 400)
        records = await asyncio.to_thread(desk.system.journal, kind=LINK_KIND, ref=alert_id)
        check = check_link(records, alert_id, token, time.time())
        if check.refused:
            desk.journal("ack_link", None, "refused", request, durable=True, code=check.refused,
                         alert_id=alert_id)  # fmt: skip
            raise Refused(check.refused, "the reply link is not valid", 403)
        result = await asyncio.to_thread(desk.system.ack, alert_id, check.by, "link")
        desk.journal("ack_link", None, result.get("error") or "ok", request, person=check.by,
                     alert_id=alert_id)  # fmt: skip
        if result.get("error"):
            return JSONResponse(result, status_code=404)
        return JSONResponse({**result, "message": f"已确认 Acknowledged: {alert_id}"})

    @app.post("/twilio/status")
    async def twilio_status(request: Request, key: str = "") -> Response:
        form = await twilio_form(request)
        if not key:
            raise Refused("MALFORMED", "status callback without ?key=", 400)
        known = await asyncio.to_thread(desk.system.provider_status, key, form)
        if not known:
            raise Refused("UNKNOWN_NOTIFICATION", f"no notification {key!r}", 404)
        return Response(status_code=204)

    @app.post("/twilio/gather/{alert_id}")
    async def twilio_gather(request: Request, alert_id: str) -> Response:
        form = await twilio_form(request)
        if form.get("Digits") != "1":
            return _twiml(("zh-CN", "未确认。"), ("en-US", "Not acknowledged. Goodbye."))
        by = form.get("To") or form.get("Called", "?")
        result = await asyncio.to_thread(desk.system.ack, alert_id, by, "voice")
        desk.journal("ack_voice", None, result.get("error") or "ok", request, person=by,
                     alert_id=alert_id)  # fmt: skip
        if result.get("error"):
            return JSONResponse(result, status_code=404)
        return _twiml(("zh-CN", "已确认，谢谢。"), ("en-US", "Acknowledged. Thank you."))

    # ---- the API (bearer API token of a person) ------------------------------------------------

    def api_caller(request: Request, action: str) -> Any:
        """A token caller allowed `action`; a browser session is not an API caller."""
        if not (request.headers.get("authorization") or "").startswith("Bearer "):
            desk.journal(f"api_{action}", None, "refused", request, durable=True,
                         code="UNAUTHORIZED")  # fmt: skip
            exc = Refused("UNAUTHORIZED", "Authorization: Bearer <API token> required", 401)
            exc.journaled = True
            raise exc
        return desk.guard(request, action)

    @app.get("/api/alerts")
    async def api_alerts(request: Request, state: str = "all") -> dict[str, Any]:
        who = api_caller(request, "view")
        if state not in ("open", "acked", "all"):
            desk.journal("api_alerts", who, "refused", request, code="MALFORMED")
            raise Refused("MALFORMED", "state must be open, acked or all", 400)
        desk.journal("api_alerts", who, "ok", request)
        return {"alerts": await asyncio.to_thread(desk.system.alerts, state)}

    @app.post("/api/ack/{alert_id}")
    async def api_ack(request: Request, alert_id: str) -> Response:
        who = api_caller(request, "ack")
        body = await request.body()
        if body:
            try:
                data = json.loads(body)
            except ValueError:
                data = None
            if not isinstance(data, dict):
                desk.journal("ack", who, "refused", request, code="MALFORMED", alert_id=alert_id)
                raise Refused("MALFORMED", "the body, when given, is a JSON object", 400)
        result = await asyncio.to_thread(desk.system.ack, alert_id, who.name, "api")
        desk.journal("ack", who, result.get("error") or "ok", request, alert_id=alert_id)
        return JSONResponse(result, status_code=404 if result.get("error") else 200)

    @app.get("/api/proposals")
    def api_proposals(request: Request) -> dict[str, Any]:
        who = desk.who(request)
        desk.journal("api_proposals", who, "ok", request)
        return {"proposals": desk.system.pending(), "groups": desk.system.groups()}

    @app.post("/api/decisions")
    async def api_decisions(request: Request) -> Response:
        try:
            data = await request.json()
        except ValueError:
            data = None
        problem = malformed_decision(data)
        if problem:
            raise Refused("MALFORMED", problem, 400)
        action = str(data.get("action", ""))
        if action not in ("approve", "reject"):
            raise Refused("MALFORMED", "action must be approve or reject", 400)
        who = desk.guard(request, action, data)
        request_id = str(data.get("request_id") or uuid.uuid4().hex)
        result = await asyncio.to_thread(
            desk.system.decide, action, [str(i) for i in data.get("ids", [])],
            str(data.get("group", "")), who.name, str(data.get("reason", "")), request_id,
            who.ref,
        )  # fmt: skip
        desk.journal(action, who, result.get("refused") or "ok", request, request_id=request_id)
        return JSONResponse(result, status_code=409 if result.get("refused") else 200)
