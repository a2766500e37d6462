"""One HTTP edge: a stdlib ThreadingHTTPServer on a daemon thread, started and stopped the same way.

The operator endpoint (acknowledgements, provider callbacks, approvals) and the provider fakes
(Twilio, WeCom) are both this server with their own `respond`; the handler, the body limit, the
start/stop lifecycle and the keep-alive details are written once here.

`respond(method, target, headers, body, client_ip)` answers `(status, headers, body)`. A body
over `max_body` is answered 413 without being read; a `respond` that raises is answered 500 and
logged — a bug in one route never hangs a client or ends the server.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

Reply = tuple[int, Mapping[str, str], bytes]  # status, headers, body


class HttpService:
    """Base of the HTTP edges; subclasses implement `respond`."""

    server_version = "fengkong/1"
    thread_name = "http"
    poll_interval = 0.1
    max_body: int | None = None  # bytes; None = no limit (the fakes take what a provider would)

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host, self.port = host, port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def respond(self, method: str, target: str, headers: Any, body: bytes, client_ip: str) -> Reply:
        raise NotImplementedError

    def too_large(self) -> Reply:
        return _json_reply(413, {"error": "TOO_LARGE", "detail": f"body over {self.max_body}"})

    def failed(self, exc: Exception) -> Reply:
        return _json_reply(500, {"error": "INTERNAL", "detail": type(exc).__name__})

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> str:
        """Serve on a daemon thread; returns the base URL. A second start is a no-op."""
        if self._server is None:
            self._server = _Server((self.host, self.port), _Handler)
            self._server.service = self
            self.port = self._server.server_address[1]
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": self.poll_interval},
                name=f"{self.thread_name}:{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> Any:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _json_reply(status: int, obj: object) -> Reply:
    body = json.dumps(obj, ensure_ascii=False).encode("utf-8")
    return status, {"Content-Type": "application/json; charset=utf-8"}, body


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True  # a restarted service binds the same port again at once
    service: HttpService


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30  # idle keep-alive connections end on their own
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server_version = self.server.service.server_version
        # Headers and body leave in two writes; without this, Nagle's algorithm holds the body
        # until the client's delayed ACK (~40 ms a request on keep-alive connections).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        service = self.server.service
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or (service.max_body is not None and length > service.max_body):
            status, headers, body = service.too_large()
            self.close_connection = True
        else:
            data = self.rfile.read(length) if length else b""
            try:
                status, headers, body = service.respond(
                    method, self.path, self.headers, data, self.client_address[0]
                )
            except Exception as exc:  # a route's bug answers 500 and is logged, never hangs
                log.exception("%s failed on %s %s", service.thread_name, method, self.path)
                status, headers, body = service.failed(exc)
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the client gave up (e.g. after an injected timeout)
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s %s", self.command, urlsplit(self.path).path)
