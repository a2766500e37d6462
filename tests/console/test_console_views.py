"""The approvals page's order progress and the account page's chart, from journal records of
the shapes the Executor and the shards write (the live versions run in the browser test)."""

from __future__ import annotations

from app.console import pages
from app.console.charts import account_chart, main_contracts
from app.console.orders_view import fold

P1, P2 = "prop-1", "prop-2"


def _order(ref: str, pid: str, inst: str, volume: float, ts: float) -> dict:
    return {"kind": "order", "ts": ts, "key": "A1", "ref": ref, "order_ref": ref,
            "proposal_id": pid, "account_id": "A1", "instrument": inst, "direction": "short",
            "offset": "close", "volume": volume}  # fmt: skip


def _report(ref: str, pid: str, status: str, filled: float, price: float, ts: float) -> dict:
    return {"kind": "order_report", "ts": ts, "ref": ref, "order_ref": ref, "proposal_id": pid,
            "status": status, "filled": filled, "price": price}  # fmt: skip


def test_orders_progress_from_sent_to_filled_and_a_late_report_never_moves_back() -> None:
    records = [
        _order("o1", P1, "rb2601", 4, 10.0),
        _order("o2", P1, "hc2601", 2, 10.0),
        _order("o3", P2, "i2601", 1, 11.0),
        _report("o1", P1, "accepted", 0, 0.0, 10.1),
        _report("o1", P1, "partially_filled", 1, 2905.0, 10.2),
        _report("o2", P1, "rejected", 0, 0.0, 10.2),
        _report("o3", P2, "filled", 1, 801.5, 11.1),
        _report("o3", P2, "accepted", 0, 0.0, 11.2),  # late: o3 stays filled
        {
            "kind": "proposal_closed",
            "ts": 12.0,
            "ref": P2,
            "state": "done",
            "risk_degree_after": 0.66,
        },  # fmt: skip
    ]
    progress = fold(records)
    assert [p["proposal_id"] for p in progress] == [P1, P2]  # still executing first
    p1, p2 = progress
    assert p1["closed"] == "" and p2["closed"] == "done"
    by = {o["order_ref"]: o for o in p1["orders"] + p2["orders"]}
    assert (by["o1"]["status"], by["o1"]["filled"], by["o1"]["fill_price"]) == (
        "partially_filled", 1, 2905.0
    )  # fmt: skip
    assert by["o2"]["status"] == "rejected" and by["o2"]["fill_price"] is None
    assert (by["o3"]["status"], by["o3"]["fill_price"]) == ("filled", 801.5)

    html = pages.progress_rows("en", progress)
    assert html.count('<tr class="order') == 3
    for word in ("partly filled", "rejected", "filled", "executing", "done (verified) → 66.0%",
                 "2,905.00", "801.50"):  # fmt: skip
        assert word in html, word
    assert "部分成交" in pages.progress_rows("zh", progress)
    assert "+1" in pages.progress_rows("en", progress, shown=1)


def test_account_chart_has_the_risk_degree_and_the_main_contracts_prices() -> None:
    view = {
        "risk_degree": 0.66,
        "positions": [
            {"instrument": "rb2601", "margin": 9000.0, "last": 2910.0},
            {"instrument": "hc2601", "margin": 3000.0, "last": 3300.0},
            {"instrument": "i2601", "margin": 100.0, "last": 800.0},
            {"instrument": "j2601", "margin": 50.0, "last": 2000.0},
        ],
    }
    assert main_contracts(view) == ["rb2601", "hc2601", "i2601"]
    events = [
        {"kind": "risk_event", "ts": 100.0, "attributes": {"risk_degree": 1.09}},
        {"kind": "account_mark", "ts": 101.0, "risk_degree": 1.09,
         "prices": {"rb2601": 2900.0, "j2601": 1990.0}},
        {"kind": "trade", "ts": 102.0, "instrument": "rb2601", "price": 2905.0},
        {"kind": "proposal_closed", "ts": 103.0, "risk_degree_after": 0.66,
         "prices_after": {"rb2601": 2910.0}},
        {"kind": "alert", "ts": 100.5, "attributes": {"risk_degree": 1.09}},  # not a point
    ]  # fmt: skip
    chart = account_chart(view, events, now=104.0)
    assert chart["risk_degree"] == [[100_000.0, 1.09], [101_000.0, 1.09], [103_000.0, 0.66],
                                    [104_000.0, 0.66]]  # fmt: skip
    assert chart["prices"]["rb2601"] == [[101_000.0, 2900.0], [102_000.0, 2905.0],
                                         [103_000.0, 2910.0], [104_000.0, 2910.0]]  # fmt: skip
    assert chart["prices"]["hc2601"] == [[104_000.0, 3300.0]]
    assert "j2601" not in chart["prices"]  # not a main contract
