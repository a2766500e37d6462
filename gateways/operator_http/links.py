"""Signed reply links: a person acknowledges from an e-mail or SMS without a login.

The link names the alert, who it was sent to and when it expires, signed with HMAC-SHA256 under
the endpoint's token; anyone holding the link can acknowledge that one alert until it expires,
and nothing else.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import quote, urlencode


def _signature(secret: str, alert_id: str, by: str, exp: int) -> str:
    msg = f"{alert_id}|{by}|{exp}".encode()
    return hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()[:32]


def sign_link(
    base_url: str, secret: str, alert_id: str, by: str, ttl_s: float, now: float | None = None
) -> str:
    exp = int((now if now is not None else time.time()) + ttl_s)
    query = urlencode({"by": by, "exp": exp, "sig": _signature(secret, alert_id, by, exp)})
    return f"{base_url.rstrip('/')}/ack/{quote(alert_id, safe='')}?{query}"


def verify_link(
    secret: str, alert_id: str, by: str, exp: str, sig: str, now: float | None = None
) -> str | None:
    """None when the link is good, else the reason it is not (BAD_SIGNATURE, EXPIRED…)."""
    try:
        expires = int(exp)
    except ValueError:
        return "MALFORMED_LINK"
    if not sig.isascii():  # a signature is hex; compare_digest would raise on anything else
        return "BAD_SIGNATURE"
    if not hmac.compare_digest(_signature(secret, alert_id, by, expires).encode(), sig.encode()):
        return "BAD_SIGNATURE"
    if expires < (now if now is not None else time.time()):
        return "LINK_EXPIRED"
    return None
