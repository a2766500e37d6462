"""Book records over ZeroMQ: one PUB topic per commodity, so a book receives only its own.

Frame: `[b"B.<commodity>|", encode_records("book_records", [record, ...])]`, each record a map
with a `kind` (inventory, contract, spot, futures_close) and that kind's fields — the same
records the folder files carry. The `|` ends the topic: ZeroMQ matches subscriptions by prefix,
and "B.p" alone would also receive "B.pp".

A frame that does not decode is one reject; a bad record in a good frame is a reject naming its
position in the frame (`zmq:<endpoint>:<frame>#<record>`), and the rest of the frame is used.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import zmq

from gateways.books.files import Reject, parse_rows
from infra.codec import CodecError, decode_records, encode_records
from rules.exposure import Record

FRAME_KIND = "book_records"


def topic(commodity: str) -> bytes:
    return f"B.{commodity}|".encode()


def publish(sock: zmq.Socket, records: list[dict[str, Any]]) -> int:
    """Send records on a PUB socket, one frame per commodity; returns frames sent."""
    by_commodity: dict[str, list[dict[str, Any]]] = {}
    for rec in records:
        by_commodity.setdefault(str(rec.get("commodity", "")), []).append(rec)
    for commodity, recs in by_commodity.items():
        sock.send_multipart([topic(commodity), encode_records(FRAME_KIND, recs)])
    return len(by_commodity)


class BookTopicSubscriber:
    """A SUB thread delivering (source, records, rejects) of each frame to `on_frame`."""

    def __init__(
        self,
        endpoint: str,
        commodities: list[str],
        on_frame: Callable[[str, list[tuple[int | None, Record]], list[Reject]], None],
    ) -> None:
        self.endpoint = endpoint
        self.commodities = list(commodities)
        self.on_frame = on_frame
        self.frames = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="book-topic", daemon=True)

    def start(self) -> BookTopicSubscriber:
        self._thread.start()
        return self

    def _run(self) -> None:
        sock = zmq.Context.instance().socket(zmq.SUB)
        for commodity in self.commodities:
            sock.setsockopt(zmq.SUBSCRIBE, topic(commodity))
        sock.connect(self.endpoint)
        try:
            while not self._stop.is_set():
                if not sock.poll(100):
                    continue
                parts = sock.recv_multipart()
                self.frames += 1
                self.on_frame(self.source(), *self.parse(parts))
        finally:
            sock.close(linger=0)

    def source(self) -> str:
        return f"zmq:{self.endpoint}:{self.frames}"

    def parse(self, parts: list[bytes]) -> tuple[list[tuple[int | None, Record]], list[Reject]]:
        source = self.source()
        if len(parts) != 2:
            return [], [Reject(source, None, f"{len(parts)} message parts, expected 2")]
        try:
            _kind, records = decode_records(parts[1], FRAME_KIND)
        except CodecError as exc:
            return [], [Reject(source, None, str(exc))]
        parsed = parse_rows(source, list(enumerate(records, start=1)), None)
        return parsed.records, parsed.rejects

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2)
