"""A local SMTP server (RFC 5321 subset) that the e-mail channel talks to as it would to a relay.

Tests and `make run` cannot reach a real mail relay, and a mock would skip smtplib, the socket
and the server's reply codes. This one speaks EHLO/HELO, AUTH PLAIN and LOGIN, MAIL, RCPT, DATA
(dot-stuffing), RSET, NOOP and QUIT on asyncio in a thread of its own, stores every accepted
message parsed (subject, text and HTML parts, headers) and can inject the answers a relay gives
when it struggles: 451 (try again later), 554 (refused), or silence until the client times out.

It does not deduplicate: a message sent twice is stored twice, so a test counts duplicates the
way a recipient would see them.

Run alone: python -m gateways.sim.smtp_sink --port 8825
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import copy
import email
import email.policy
import hmac
import logging
import random
import secrets
import socket
import threading
import time
from collections import defaultdict
from email.message import EmailMessage

log = logging.getLogger(__name__)

FAULT_KINDS = ("4xx", "5xx", "timeout", "mixed")
IDEMPOTENCY_HEADER = "X-Fengkong-Idempotency-Key"
MAX_SIZE = 10 * 1024 * 1024


class SmtpSink:
    """SMTP server on 127.0.0.1 with fault injection and inspection."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        username: str | None = None,
        password: str | None = None,
        failure_rate: float = 0.0,
        failure_kind: str = "4xx",
        timeout_delay: float = 6.0,
        seed: int = 0,
    ) -> None:
        if failure_kind not in FAULT_KINDS:
            raise ValueError(f"failure_kind must be one of {FAULT_KINDS}, not {failure_kind!r}")
        self.host, self.port = host, port
        self.username, self._password = username, password
        self.failure_rate = failure_rate
        self.failure_kind = failure_kind
        self.timeout_delay = timeout_delay
        self.latency_s = 0.0  # wait after storing, before the final 250 (an accepted, slow relay)
        self.rejected_recipients: set[str] = set()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self.reset()

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> str:
        """Serve in a daemon thread; returns "smtp://127.0.0.1:PORT"."""
        if self._thread is not None:
            return self.url
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._session, self.host, self.port, reuse_address=True)
            )
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="smtp-sink", daemon=True)
        self._thread.start()
        ready.wait(5)
        return self.url

    def stop(self) -> None:
        loop, self._loop = self._loop, None
        if loop is None:
            return

        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(close(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    def __enter__(self) -> SmtpSink:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- controls and inspection -----------------------------------------------------------

    def fail_next(self, n: int, kind: str = "4xx") -> None:
        """Answer the next n messages (at the end of DATA) with a fault; they are not stored."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {FAULT_KINDS}, not {kind!r}")
        with self._lock:
            self._faults.extend([kind] * n)

    def messages(self) -> list[dict]:
        with self._lock:
            return copy.deepcopy(self._messages)

    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self._stats)

    def reset(self) -> None:
        with self._lock:
            self._messages: list[dict] = []
            self._faults: list[str] = []
            self._stats: defaultdict[str, int] = defaultdict(int)

    def _count(self, name: str) -> None:
        with self._lock:
            self._stats[name] += 1

    def _take_fault(self) -> str | None:
        with self._lock:
            if self._faults:
                kind = self._faults.pop(0)
            elif self.failure_rate and self._rng.random() < self.failure_rate:
                kind = self.failure_kind
            else:
                return None
            if kind == "mixed":
                kind = self._rng.choice(("4xx", "timeout"))
            self._stats[f"faults_{kind}"] += 1
            return kind

    # ---- the SMTP session --------------------------------------------------------------------

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def say(line: str) -> None:
            writer.write(line.encode() + b"\r\n")
            await writer.drain()

        sock = writer.get_extra_info("socket")
        if sock is not None:  # replies are small writes; don't let Nagle hold them for an ACK
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        state: dict = {"authed": self._password is None, "from": None, "rcpt": []}
        try:
            await say("220 fengkong-smtp-sink ESMTP ready")
            while True:
                raw = await reader.readline()
                if not raw:
                    return
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                verb, _, arg = line.partition(" ")
                verb = verb.upper()
                if verb == "QUIT":
                    await say("221 2.0.0 Bye")
                    return
                reply = await self._command(verb, arg, state, reader, say)
                if reply:
                    await say(reply)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            return
        finally:
            writer.close()

    async def _command(self, verb: str, arg: str, state: dict, reader, say) -> str:  # noqa: ANN001
        if verb == "EHLO":
            ext = ["8BITMIME", "SMTPUTF8", f"SIZE {MAX_SIZE}"]
            if self._password is not None:
                ext.append("AUTH PLAIN LOGIN")
            lines = ["fengkong-smtp-sink", *ext]
            return "\r\n".join([*(f"250-{t}" for t in lines[:-1]), f"250 {lines[-1]}"])
        if verb == "HELO":
            return "250 fengkong-smtp-sink"
        if verb == "NOOP":
            return "250 2.0.0 OK"
        if verb == "RSET":
            state.update({"from": None, "rcpt": []})
            return "250 2.0.0 OK"
        if verb == "AUTH":
            return await self._auth(arg, state, reader, say)
        if verb == "MAIL":
            if not state["authed"]:
                return "530 5.7.0 Authentication required"
            if not arg.upper().startswith("FROM:"):
                return "501 5.5.4 Syntax: MAIL FROM:<address>"
            state.update({"from": _address(arg[5:]), "rcpt": []})
            return "250 2.1.0 OK"
        if verb == "RCPT":
            if state["from"] is None:
                return "503 5.5.1 Error: need MAIL command"
            if not arg.upper().startswith("TO:"):
                return "501 5.5.4 Syntax: RCPT TO:<address>"
            rcpt = _address(arg[3:])
            if "@" not in rcpt:
                self._count("rejected")
                return "553 5.1.3 Bad recipient address syntax"
            if rcpt in self.rejected_recipients:
                self._count("rejected")
                return "550 5.1.1 User unknown"
            state["rcpt"].append(rcpt)
            return "250 2.1.5 OK"
        if verb == "DATA":
            if not state["rcpt"]:
                return "503 5.5.1 Error: need RCPT command"
            await say("354 End data with <CR><LF>.<CR><LF>")
            data = await _read_data(reader)
            if data is None:
                self._count("cut_off")
                raise ConnectionResetError("the client went away in the middle of DATA")
            reply = await self._accept(state, data)
            state.update({"from": None, "rcpt": []})
            return reply
        return "500 5.5.2 Error: command not recognized"

    async def _auth(self, arg: str, state: dict, reader, say) -> str:  # noqa: ANN001
        mech, _, initial = arg.partition(" ")
        mech = mech.upper()
        try:
            if mech == "PLAIN":
                if not initial:
                    await say("334 ")
                    initial = (await reader.readline()).decode().strip()
                _authzid, user, password = base64.b64decode(initial).decode().split("\0")
            elif mech == "LOGIN":
                await say("334 " + base64.b64encode(b"Username:").decode())
                user = base64.b64decode((await reader.readline()).strip()).decode()
                await say("334 " + base64.b64encode(b"Password:").decode())
                password = base64.b64decode((await reader.readline()).strip()).decode()
            else:
                return "504 5.5.4 Unrecognized authentication type"
        except (ValueError, binascii.Error, UnicodeDecodeError):
            return "501 5.5.2 Cannot decode response"
        ok = (
            self._password is not None
            and hmac.compare_digest(user, self.username or "")
            and hmac.compare_digest(password, self._password)
        )
        if not ok:
            self._count("auth_failed")
            return "535 5.7.8 Authentication credentials invalid"
        state["authed"] = True
        return "235 2.7.0 Authentication successful"

    async def _accept(self, state: dict, data: bytes) -> str:
        if len(data) > MAX_SIZE:
            self._count("rejected")
            return "552 5.3.4 Message size exceeds fixed limit"
        fault = self._take_fault()
        if fault == "timeout":
            await asyncio.sleep(self.timeout_delay)
            return "451 4.4.2 Timeout waiting for the queue"
        if fault == "4xx":
            return "451 4.3.0 Temporary local problem, try again later"
        if fault == "5xx":
            return "554 5.3.0 Transaction failed"
        msg = email.message_from_bytes(data, policy=email.policy.default)
        queue_id = secrets.token_hex(5).upper()
        record = _record(msg, state, queue_id)
        with self._lock:
            self._messages.append(record)
            self._stats["delivered"] += 1
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        return f"250 2.0.0 OK queued as {queue_id}"


def _address(text: str) -> str:
    text = text.strip()
    if text.startswith("<"):
        text = text[1 : text.find(">")] if ">" in text else text[1:]
    return text.split(" ")[0]


async def _read_data(reader: asyncio.StreamReader) -> bytes | None:
    """The message up to the end-of-data line, or None if the client went away before it: a
    server takes no message whose DATA was cut off (RFC 5321 §4.1.1.4), so a client killed
    mid-DATA leaves nothing behind (it used to leave a headless half message)."""
    lines = []
    while True:
        line = await reader.readline()
        if not line:
            return None
        if line in (b".\r\n", b".\n"):
            return b"".join(lines)
        lines.append(line[1:] if line.startswith(b"..") else line)


def _record(msg: EmailMessage, state: dict, queue_id: str) -> dict:
    def part(kind: str) -> str:
        found = msg.get_body(preferencelist=(kind,))
        return found.get_content() if found is not None else ""

    message_id = str(msg.get("Message-ID", ""))
    return {
        "provider": "email",
        "received_at": time.time(),
        "queue_id": queue_id,
        "recipient": state["rcpt"][0],
        "recipients": list(state["rcpt"]),
        "mail_from": state["from"],
        "from": str(msg.get("From", "")),
        "to": str(msg.get("To", "")),
        "subject": str(msg.get("Subject", "")),
        "message_id": message_id,
        "idempotency_key": str(msg.get(IDEMPOTENCY_HEADER, "")) or message_id,
        "body": part("plain"),
        "html": part("html"),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8825)
    parser.add_argument("--username")
    parser.add_argument("--password")
    parser.add_argument("--failure-rate", type=float, default=0.0)
    parser.add_argument("--failure-kind", choices=FAULT_KINDS, default="4xx")
    args = parser.parse_args(argv)
    sink = SmtpSink(
        args.host,
        args.port,
        username=args.username,
        password=args.password,
        failure_rate=args.failure_rate,
        failure_kind=args.failure_kind,
    )
    print(sink.start(), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        sink.stop()


if __name__ == "__main__":
    main()
