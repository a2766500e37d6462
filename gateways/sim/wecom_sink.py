"""The WeCom (企业微信) group-robot part of the provider sink: the robot webhook's wire format.

POST /cgi-bin/webhook/send?key=KEY with JSON {msgtype: text|markdown, <msgtype>: {content,
mentioned_mobile_list, mentioned_list}} answers HTTP 200 with {errcode, errmsg}: 0 ok, 93000 an
unknown key, 40008 a bad msgtype, 44004 empty content, 40058 content over its byte limit, 45009
over 20 messages per rolling 60 s per key. The real client is `gateways.channels.wecom`.
"""

from __future__ import annotations

import json
import random
import time
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qs

from gateways.sim.sink_log import Answer, SinkLog, json_answer

WECOM_PATH = "/cgi-bin/webhook/send"
WECOM_IDEMPOTENCY_HEADER = "X-Fengkong-Idempotency-Key"
WECOM_MEMBERS_HEADER = "X-Fengkong-Notification-Keys"
CONTENT_LIMITS = {"text": 2048, "markdown": 4096}  # bytes of UTF-8 content


class WeComRobot:
    """Accepted robot keys and their rolling rate windows."""

    def __init__(
        self, log: SinkLog, keys: Iterable[str], rate_limit: int = 20, rate_window: float = 60.0
    ) -> None:
        self.log = log
        self.keys = set(keys)
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        self.clear()

    def clear(self) -> None:
        self.rate: defaultdict[str, deque[float]] = defaultdict(deque)

    def send(self, query: str, headers: Mapping[str, str], body: bytes, ip: str) -> Answer:
        """POST /cgi-bin/webhook/send?key=KEY: errcode 0, or the errcode WeCom answers."""
        key = parse_qs(query).get("key", [""])[0]
        if key not in self.keys:
            return self._error(93000, "invalid webhook url", ip)
        try:
            payload = json.loads(body)
            msgtype = payload.get("msgtype")
        except (ValueError, AttributeError):
            return self._error(40008, "invalid message type", ip)
        if msgtype not in CONTENT_LIMITS:
            return self._error(40008, "invalid message type", ip)
        part = payload.get(msgtype)
        content = part.get("content") if isinstance(part, dict) else None
        if not isinstance(content, str) or not content:
            return self._error(44004, "empty content", ip)
        limit = CONTENT_LIMITS[msgtype]
        if len(content.encode("utf-8")) > limit:
            text = f"{msgtype}.content exceed max length {limit}. invalid Request Parameter"
            return self._error(40058, text, ip)
        with self.log.lock:
            now = time.monotonic()
            window = self.rate[key]
            while window and now - window[0] >= self.rate_window:
                window.popleft()
            if len(window) >= self.rate_limit:
                self.log.stats["wecom_rate_limited"] += 1
                return self._error(45009, "api freq out of limit", ip, count=False)
            window.append(now)
            self.log.messages.append(
                {
                    "provider": "wecom",
                    "received_at": time.time(),
                    "recipient": key,
                    "body": content,
                    "idempotency_key": headers.get(WECOM_IDEMPOTENCY_HEADER),
                    "notification_keys": [
                        k for k in (headers.get(WECOM_MEMBERS_HEADER) or "").split(",") if k
                    ],
                    "key": key,
                    "msgtype": msgtype,
                    "mentioned_mobile_list": list(part.get("mentioned_mobile_list") or []),
                    "mentioned_list": list(part.get("mentioned_list") or []),
                }
            )
            self.log.stats["wecom_delivered"] += 1
        return json_answer(200, {"errcode": 0, "errmsg": "ok"})

    def _error(self, code: int, text: str, ip: str, *, count: bool = True) -> Answer:
        if count:
            self.log.count("wecom_rejected")
        hint = "".join(str(random.randrange(10)) for _ in range(25))
        more = f"https://open.work.weixin.qq.com/devtool/query?e={code}"
        errmsg = f"{text}, hint: [{hint}], from ip: {ip}, more info at {more}"
        return json_answer(200, {"errcode": code, "errmsg": errmsg})

    def _count(self, name: str) -> None:
        with self.log.lock:
            self.log.stats[name] += 1
