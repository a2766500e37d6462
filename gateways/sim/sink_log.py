"""What the provider fakes share: one lock, the messages that arrived, counters, a stop event,
and the shapes of their answers (JSON bodies, Twilio's error resource).

The provider sink (`provider_sink`) owns one `SinkLog`; its Twilio Messages (`twilio_sms_sink`),
Twilio Calls (`twilio_voice_sink`) and WeCom robot (`wecom_sink`) parts write into it, so tests
read every delivery from one place, oldest first.
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict

Answer = tuple[int, dict[str, str], bytes]  # status, headers, body


class SinkLog:
    """Messages and counters of the fakes, under one lock; `stop` ends their callback threads."""

    def __init__(self, callback_delay: float = 0.05) -> None:
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.callback_delay = callback_delay  # before a provider's first status callback
        self.clear()

    def clear(self) -> None:
        """Forget messages and counters (the caller holds the lock, or no thread runs yet)."""
        self.messages: list[dict] = []
        self.stats: defaultdict[str, int] = defaultdict(int)

    def repeated(self, tokens: dict[str, dict], token: str | None, provider: str) -> None:
        """Twilio's Messages and Calls create take no idempotency key (docs/delivery.md): a
        post that repeats an `I-Twilio-Idempotency-Token` is a second message there, so it is
        one here too, counted (`{provider}_repeated_token`) so a test sees the duplicate (the
        caller holds the lock)."""
        if token is not None and token in tokens:
            self.stats[f"{provider}_repeated_token"] += 1

    def delivered(
        self, record: dict, tokens: dict[str, dict], token: str | None, resource: dict
    ) -> None:
        """Keep a delivered message and its token's resource (the caller holds the lock)."""
        self.messages.append(record)
        if token is not None:
            tokens[token] = resource
        self.stats[f"{record['provider']}_delivered"] += 1

    def count(self, name: str) -> None:
        """Count under the lock (callers must not hold it)."""
        with self.lock:
            self.stats[name] += 1


def json_answer(status: int, obj: object, **headers: str) -> Answer:
    body = json.dumps(obj, ensure_ascii=False).encode("utf-8")
    return status, {"Content-Type": "application/json; charset=utf-8", **headers}, body


def twilio_error(status: int, code: int, message: str, **headers: str) -> Answer:
    """Twilio's error resource (https://www.twilio.com/docs/usage/twilios-response)."""
    more_info = f"https://www.twilio.com/docs/errors/{code}"
    obj = {"code": code, "message": message, "more_info": more_info, "status": status}
    return json_answer(status, obj, **headers)
