"""Typed journal records: one definition per kind, one registry, the same dicts the journal holds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pytest

from rules.execution.state import RESUME_KINDS
from rules.journal_records import (
    KINDS,
    REGISTRY,
    JournalRecord,
    OrderSent,
    ProposalClosed,
    Trade,
    UnknownRecordKind,
    parse,
    register,
)
from rules.model import Direction, Offset


def test_every_kind_round_trips_through_its_dict():
    for kind, cls in REGISTRY.items():
        rec = cls(actor="X", key="k", ref="r", ts=1.5).to_record()
        assert rec["kind"] == kind and rec["v"] == cls.VERSION
        back = parse({**rec, "seq": 7})
        assert type(back) is cls and back.seq == 7 and back.to_record() == rec


def test_the_executor_replays_only_registered_kinds_and_readers_know_them():
    assert set(RESUME_KINDS) <= set(KINDS)
    from infra.reports.replay import STEP_OF_KIND

    assert {k for k in STEP_OF_KIND if not k.startswith("notification.")} <= set(REGISTRY)


def test_an_older_record_reads_with_defaults_and_unknown_keys_are_ignored():
    old = {"kind": "order", "ref": "O1", "ts": 2.0, "volume": 3, "from_the_future": True}
    order = OrderSent.from_record(old)
    assert order.ref == "O1" and order.volume == 3 and order.attempt == 0 and order.reason == ""


def test_optional_fields_are_left_out_when_absent():
    rec = ProposalClosed(ref="P1", state="done").to_record()
    assert "risk_degree_after" not in rec and rec["proposal_to_fill_ms"] is None
    assert ProposalClosed(risk_degree_after=0.7).to_record()["risk_degree_after"] == 0.7


def test_orders_and_trades_give_the_typed_order_and_fill():
    sent = OrderSent(order_ref="O1", proposal_id="P1", account_id="A", instrument="rb2601",
                     direction="short", offset="close", volume=2, limit_price=3000.0)  # fmt: skip
    order = sent.to_order()
    assert order.direction is Direction.SHORT and order.offset is Offset.CLOSE
    assert set(order.to_record()) == {
        "order_ref", "proposal_id", "account_id", "instrument", "direction", "offset", "volume",
        "limit_price", "created_ts",
    }  # fmt: skip
    fill = Trade(order_ref="O1", account_id="A", instrument="rb2601", direction="short",
                 offset="close", volume=2, price=2999.0, ts=3.0, trade_id="O1#1").to_fill()  # fmt: skip
    assert fill.price == 2999.0 and fill.direction is Direction.SHORT and fill.trade_id == "O1#1"


def test_an_unknown_kind_is_an_error_and_a_kind_is_defined_once():
    with pytest.raises(UnknownRecordKind, match="no.such"):
        parse({"kind": "no.such"})

    with pytest.raises(ValueError, match="registered twice"):

        @register
        @dataclass(frozen=True, kw_only=True)
        class Again(JournalRecord):
            KIND: ClassVar[str] = "order"
