"""WeCom (企业微信) group-robot webhook.

Wire format (developer.work.weixin.qq.com/document/path/91770):
POST {base}/cgi-bin/webhook/send?key=KEY with {"msgtype": "text", "text": {"content": ...,
"mentioned_mobile_list": [...]}} or {"msgtype": "markdown", "markdown": {"content": ...}}.
The answer is always HTTP 200 with {"errcode": 0, "errmsg": "ok"} on success; failures are told
by errcode, so the retry decision reads errcode, not the HTTP status.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence

import requests

from gateways.channels.base import (
    DeliveryResult,
    Notification,
    install_log_redaction,
    is_loopback,
    redact,
    resolve_secret,
)

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://qyapi.weixin.qq.com"
# WeCom ignores unknown headers; the local sink records this one so duplicates can be counted.
IDEMPOTENCY_HEADER = "X-Fengkong-Idempotency-Key"
# A coalesced message (many notifications in one post, under the robot's rate limit) names the
# notifications it carries, so duplicates stay countable per notification.
MEMBERS_HEADER = "X-Fengkong-Notification-Keys"
TEXT_MAX_BYTES = 2048
MARKDOWN_MAX_BYTES = 4096

# -1 system busy, 6000 data version conflict, 45009 api freq out of limit (20 msgs/min/robot),
# 45033 api concurrent out of limit. Everything else (93000 invalid webhook url/key, 40008
# invalid message type, 40058 invalid parameter/too long, 44004 empty content...) is permanent.
RETRYABLE_ERRCODES = frozenset({-1, 6000, 45009, 45033})


def truncate_utf8(text: str, max_bytes: int) -> str:
    """Cut text to max_bytes of UTF-8 on a character boundary, marking the cut with '…'.

    WeCom counts bytes, not characters (a Chinese character is 3), and over-long content is
    rejected (40058) or silently dropped, so we cut before sending.
    """
    raw = text.encode("utf-8")
    if len(raw) <= max_bytes:
        return text
    ellipsis = "…".encode()
    return raw[: max_bytes - len(ellipsis)].decode("utf-8", "ignore") + "…"


class WeComChannel:
    """Sends a Notification to one WeCom group robot."""

    kind = "wecom"

    def __init__(
        self,
        name: str,
        *,
        key: str,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 5.0,
        markdown: bool = False,
        mention_mobiles: Sequence[str] = (),
        session: requests.Session | None = None,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.markdown = markdown
        self.mention_mobiles = list(mention_mobiles)
        self._key = key
        self._url = f"{self.base_url}/cgi-bin/webhook/send"
        self._session = session or requests.Session()
        # A proxy from the environment must not capture calls meant for a local sink.
        self._session.trust_env = not is_loopback(self.base_url)
        install_log_redaction()

    @classmethod
    def from_config(cls, cfg: Mapping) -> WeComChannel:
        """Keys: name, key_env (or key for a local sink), base_url, timeout, markdown,
        mention_mobiles."""
        base_url = cfg.get("base_url", DEFAULT_BASE_URL)
        return cls(
            cfg.get("name", "wecom"),
            key=resolve_secret(cfg, "key_env", "key", base_url=base_url),
            base_url=base_url,
            timeout=float(cfg.get("timeout", 5.0)),
            markdown=bool(cfg.get("markdown", False)),
            mention_mobiles=cfg.get("mention_mobiles", ()),
        )

    def __repr__(self) -> str:
        return f"WeComChannel(name={self.name!r}, base_url={self.base_url!r})"

    def payload(self, note: Notification) -> dict:
        """The JSON body for a note: markdown when configured and offered, else text."""
        if self.markdown and note.markdown:
            content = truncate_utf8(note.markdown, MARKDOWN_MAX_BYTES)
            return {"msgtype": "markdown", "markdown": {"content": content}}
        text: dict = {"content": truncate_utf8(note.plain(), TEXT_MAX_BYTES)}
        mobiles = [*self.mention_mobiles]
        for mobile in (note.recipient, *note.mentions):
            if mobile and mobile not in mobiles:
                mobiles.append(mobile)
        if mobiles:
            text["mentioned_mobile_list"] = mobiles
        return {"msgtype": "text", "text": text}

    def send(self, note: Notification) -> DeliveryResult:
        body = json.dumps(self.payload(note), ensure_ascii=False).encode("utf-8")
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            IDEMPOTENCY_HEADER: note.idempotency_key,
        }
        if note.member_keys:
            headers[MEMBERS_HEADER] = ",".join(note.member_keys)
        start = time.perf_counter()
        try:
            resp = self._session.post(
                self._url,
                params={"key": self._key},
                data=body,
                headers=headers,
                timeout=self.timeout,
            )
        except requests.Timeout:
            return self._fail(start, True, None, f"timeout after {self.timeout}s")
        except requests.RequestException as exc:
            return self._fail(start, True, None, f"{type(exc).__name__}: {exc}")
        return self._judge(resp, start)

    def _judge(self, resp: requests.Response, start: float) -> DeliveryResult:
        status = resp.status_code
        if status >= 400:
            retry = status >= 500 or status == 429
            return self._fail(start, retry, status, f"HTTP {status}")
        try:
            answer = resp.json()
            errcode = int(answer.get("errcode", -1))
        except (ValueError, AttributeError, TypeError):
            return self._fail(start, True, status, "answer is not WeCom JSON")
        if errcode != 0:
            msg = f"errcode {errcode}: {answer.get('errmsg', '')}"
            return self._fail(start, errcode in RETRYABLE_ERRCODES, status, msg, errcode)
        latency = (time.perf_counter() - start) * 1000
        return DeliveryResult(ok=True, retry=False, status=status, latency_ms=latency, code=0)

    def _fail(
        self, start: float, retry: bool, status: int | None, error: str, code: int | None = None
    ) -> DeliveryResult:
        error = redact(error, self._key)
        log.info("wecom %s: send failed (retry=%s): %s", self.name, retry, error)
        return DeliveryResult(
            ok=False,
            retry=retry,
            status=status,
            error=error,
            latency_ms=(time.perf_counter() - start) * 1000,
            code=code,
        )
