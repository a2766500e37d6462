"""One ZeroMQ service: sockets opened at start, one poll loop on a thread of its own, closed at stop.

Every ZeroMQ edge of fengkong (the account bus, the order bridge's two sides, the simulated order
gateway and exchange, the book topic subscriber) is this loop with its own sockets and handlers,
so the lifecycle is written once:

- `open()` creates the sockets (`socket(kind, bind=…, connect=…, on_message=…)`); a bind that
  fails closes what was opened and raises, so a second start on a busy port leaves nothing behind;
- `start()` opens (if not yet) and runs `_run` on a daemon thread: poll the sockets that have a
  handler, drain each (a bounded number of messages a turn, so one busy socket cannot starve the
  others), then `turn(now)` for timed work (heads, ticks);
- a handler that raises is counted (`loop_errors`) and reported to `on_bad_message`; the loop goes
  on — one malformed frame must not end a gateway;
- `stop()` ends the loop and joins it; the sockets close on the loop's own thread (ZeroMQ sockets
  belong to one thread), each with its own linger.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import zmq

log = logging.getLogger(__name__)

Handler = Callable[[list[bytes]], None]


class ZmqService:
    """Base of the ZeroMQ edges: subclasses open their sockets in `_open` and answer messages."""

    thread_name = "zmq-service"
    poll_ms = 50  # a turn at least this often, for `turn` and for noticing stop
    drain_limit = 1000  # messages from one socket per turn
    join_timeout_s = 5.0

    def __init__(self) -> None:
        self.loop_errors = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sockets: list[tuple[zmq.Socket, int]] = []  # socket, linger ms
        self._handlers: dict[zmq.Socket, Handler] = {}
        self._send_lock = threading.Lock()  # for sends from threads other than the loop's

    # -- sockets ---------------------------------------------------------------------------
    def socket(
        self,
        kind: int,
        *,
        bind: str | None = None,
        connect: Iterable[str] = (),
        subscribe: Iterable[bytes] = (),
        on_message: Handler | None = None,
        linger: int = 0,
        options: dict[int, Any] | None = None,
    ) -> zmq.Socket:
        """A socket owned by the service: options set, subscribed, bound or connected."""
        sock = zmq.Context.instance().socket(kind)
        self._sockets.append((sock, linger))
        for option, value in (options or {}).items():
            sock.setsockopt(option, value)
        for topic in subscribe:
            sock.setsockopt(zmq.SUBSCRIBE, topic)
        if bind is not None:
            _bind(sock, bind)
        for endpoint in connect:
            sock.connect(endpoint)
        if on_message is not None:
            self._handlers[sock] = on_message
        return sock

    def _open(self) -> None:
        """Create the service's sockets with `socket(...)`."""
        raise NotImplementedError

    def open(self) -> None:
        if self._sockets:
            return
        try:
            self._open()
        except zmq.ZMQError:
            self._close()
            raise

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> Any:
        self.open()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread.is_alive():
            thread.join(timeout=self.join_timeout_s)
        elif thread is None:
            self._close()  # opened, never started

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _close(self) -> None:
        with self._send_lock:
            for sock, linger in self._sockets:
                sock.close(linger=linger)
            self._sockets = []
            self._handlers = {}

    # -- loop ------------------------------------------------------------------------------
    def wait_ms(self, now: float) -> int:
        """How long the next poll may wait; a timed service answers its next deadline."""
        return self.poll_ms

    def turn(self, now: float) -> None:
        """Timed work after each poll (monotonic `now`); nothing by default."""

    def on_bad_message(self, parts: list[bytes], exc: Exception) -> None:
        """A handler raised on this message; the default logs it (subclasses quarantine)."""
        log.warning("%s: %s: %s", self.thread_name, type(exc).__name__, exc)

    def _run(self) -> None:
        poller = zmq.Poller()
        for sock in self._handlers:
            poller.register(sock, zmq.POLLIN)
        try:
            while not self._stop.is_set():
                timeout = max(0, self.wait_ms(time.monotonic()))
                if self._handlers:
                    events = dict(poller.poll(timeout))
                else:
                    self._stop.wait(timeout / 1000)
                    events = {}
                for sock, handle in self._handlers.items():
                    if sock in events:
                        self._drain(sock, handle)
                try:
                    self.turn(time.monotonic())
                except Exception as exc:  # timed work fails alone; the loop goes on
                    self.loop_errors += 1
                    log.exception("%s: turn failed: %s", self.thread_name, exc)
        finally:
            self._close()

    def _drain(self, sock: zmq.Socket, handle: Handler) -> None:
        for _ in range(self.drain_limit):
            try:
                parts = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                handle(parts)
            except Exception as exc:  # a malformed message must not end the loop
                self.loop_errors += 1
                self.on_bad_message(parts, exc)


REBIND_WITHIN_S = 2.0


def _bind(sock: zmq.Socket, endpoint: str) -> None:
    """Bind, waiting out an address still held by a socket this process closed a moment ago:
    ZeroMQ's I/O thread releases it after `close()` returns, so a service restarted in place (a
    bus that came back on its node) would otherwise fail with EADDRINUSE. Anything else, or an
    address still taken after REBIND_WITHIN_S, raises."""
    deadline = time.monotonic() + REBIND_WITHIN_S
    while True:
        try:
            sock.bind(endpoint)
            return
        except zmq.ZMQError as exc:
            if exc.errno != zmq.EADDRINUSE or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)
