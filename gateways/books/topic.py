"""Book records over ZeroMQ: one PUB topic per commodity, so a book receives only its own.

Frame: `[b"B.<commodity>|", encode_records("book_records", [record, ...])]`, each record a map
with a `kind` (inventory, contract, spot, futures_close) and that kind's fields — the same
records the folder files carry. The `|` ends the topic: ZeroMQ matches subscriptions by prefix,
and "B.p" alone would also receive "B.pp".

A frame that does not decode is one reject; a bad record in a good frame is a reject naming its
position in the frame (`zmq:<endpoint>:<frame>#<record>`), and the rest of the frame is used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import zmq

from gateways.books.files import Reject, parse_rows
from gateways.zmq_service import ZmqService
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


class BookTopicSubscriber(ZmqService):
    """A SUB thread delivering (source, records, rejects) of each frame to `on_frame`."""

    thread_name = "book-topic"
    poll_ms = 100
    join_timeout_s = 2.0

    def __init__(
        self,
        endpoint: str,
        commodities: list[str],
        on_frame: Callable[[str, list[tuple[int | None, Record]], list[Reject]], None],
    ) -> None:
        super().__init__()
        self.endpoint = endpoint
        self.commodities = list(commodities)
        self.on_frame = on_frame
        self.frames = 0

    def _open(self) -> None:
        self.socket(
            zmq.SUB,
            subscribe=[topic(c) for c in self.commodities],
            connect=[self.endpoint],
            on_message=self._frame,
        )

    def _frame(self, parts: list[bytes]) -> None:
        self.frames += 1
        self.on_frame(self.source(), *self.parse(parts))

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
