"""Routes for callers that are not in a browser session: signed ack links, Twilio, the API.

The same checks as the stdlib endpoints in gateways/operator_http (which stay until the lead
switches the Notifier's links and callbacks to the console's URL): `verify_link` for reply
links, twilio's RequestValidator on `X-Twilio-Signature`, and for the approval API a person's
bearer API token (so a decision is always attributable to an authenticated person).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any
from xml.sax.saxutils import escape

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from twilio.request_validator import RequestValidator

from app.console.auth import Desk, Refused
from gateways.operator_http.links import verify_link


def _twiml(*says: tuple[str, str]) -> Response:
    parts = "".join(f'<Say language="{lang}">{escape(text)}</Say>' for lang, text in says)
    xml = f'<?xml version="1.0" encoding="UTF-8"?><Response>{parts}<Hangup/></Response>'
    return Response(xml, media_type="text/xml; charset=utf-8")


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
    def ack_link(
        request: Request, alert_id: str, by: str = "", exp: str = "", sig: str = ""
    ) -> Response:
        why = (
            verify_link(desk.link_secret, alert_id, by, exp, sig)
            if desk.link_secret
            else "NO_SECRET"
        )
        if why:
            desk.journal("ack_link", None, "refused", request, durable=True, person=by, code=why,
                         alert_id=alert_id)  # fmt: skip
            raise Refused(why, "the link is not valid", 403)
        result = desk.system.ack(alert_id, by, "link")
        desk.journal("ack_link", None, result.get("error") or "ok", request, person=by,
                     alert_id=alert_id)  # fmt: skip
        status = 404 if result.get("error") else 200
        return JSONResponse(result, status_code=status)

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

    # ---- the approval API (bearer API token of a person) ---------------------------------------

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
        if not isinstance(data, dict) or not isinstance(data.get("ids", []), list):
            raise Refused("MALFORMED", "body must be a JSON object with ids: [...]", 400)
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
