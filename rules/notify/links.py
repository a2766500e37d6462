"""Reply links ("tap to acknowledge") whose journal record is useless to a reader of the journal.

A link carries a random token; the journal keeps only the token's SHA-256 digest, with the page
it acknowledges, the person it was sent to and its expiry (`notification.link`). Whoever presents
the token is checked by hashing it and finding that digest among the page's link records, so a
copy of the journal (an archive, a report, a backup) holds no working link, and no signing key
has to be shared between the Notifier and the console.

Pure (stdlib only): the shell draws the token (`secrets`) and journals the record before the
message that carries the link is posted; the console reads the records back to verify.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

LINK_KIND = "notification.link"
TOKEN_PARAM = "t"


def token_digest(token: str) -> str:
    """The digest the journal keeps of a link token (hex SHA-256)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def link_url(console_url: str, page_id: str, token: str) -> str:
    """The console's acknowledge route for one page, carrying the token."""
    return f"{console_url.rstrip('/')}/ack/{quote(page_id, safe='')}?{TOKEN_PARAM}={token}"


def link_record(page_id: str, by: str, token: str, expires_ts: float) -> dict[str, Any]:
    """The journal record of one link: the digest, never the token (key: who it was sent to)."""
    return {
        "kind": LINK_KIND,
        "actor": "Notifier",
        "key": by,
        "ref": page_id,
        "token_sha256": token_digest(token),
        "expires_ts": float(expires_ts),
        "v": 1,
    }


@dataclass(frozen=True)
class LinkCheck:
    """The outcome of presenting a token: who acknowledges (`by`) or why not (`refused`)."""

    by: str = ""
    refused: str = ""


def check_link(records: list[dict[str, Any]], page_id: str, token: str, now: float) -> LinkCheck:
    """Verify a presented token against the page's link records (newest last).

    MALFORMED_LINK: no token; BAD_TOKEN: no record of this page has its digest; LINK_EXPIRED:
    the matching record's expiry has passed."""
    if not token or len(token) > 200:
        return LinkCheck(refused="MALFORMED_LINK")
    digest = token_digest(token)
    for rec in reversed(records):
        if rec.get("kind", LINK_KIND) != LINK_KIND or rec.get("ref") != page_id:
            continue
        if hmac.compare_digest(str(rec.get("token_sha256", "")), digest):
            if float(rec.get("expires_ts", 0.0)) < now:
                return LinkCheck(refused="LINK_EXPIRED")
            return LinkCheck(by=str(rec.get("key", "")))
    return LinkCheck(refused="BAD_TOKEN")
