"""The account bus keeps bounded memory (issue 13 item 4) over real ZeroMQ.

A flood of 200,000 records for 1,000 accounts (snapshots, fills, transfers, updates, orders
with and without a status, cancels, one settlement), the bus's log bounded at 5,000: the bus
holds at most the log plus the compacted state (per account its latest snapshot and what
followed), and a subscriber that joins after the flood rebuilds every account's book exactly —
the same figures and open positions as a book fed the whole stream in order. A client that
fell behind the log part-way also ends with exactly the right books. On the old bus every
record stayed in memory (721,000 after a flood), and `log_size` did not exist.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import zmq

from gateways.accounts.bus import AccountBus, AccountBusClient
from infra.codec import encode_records
from infra.specs import load_contract_table
from rules.book import AccountBook
from rules.book.columns import BookError
from rules.sharding import BUCKETS
from tests.zmq_util import free_tcp_endpoint, wait_until

ALL = list(range(BUCKETS))
ACCOUNTS = 1_000
FLOOD = 200_000
LOG_SIZE = 5_000
RESNAPSHOT = 10  # a reconciling source re-sends each account's snapshot every ~10 records
INSTRUMENT = "i2601"  # DCE: a close takes the oldest lots first


def _snapshot(account: str, rng: random.Random) -> dict:
    return {"type": "snapshot", "account_id": account, "pre_balance": 1_000_000.0,
            "deposit": float(rng.randint(0, 9) * 1000), "commission": 10.0,
            "positions": [{"instrument": INSTRUMENT, "direction": "long",
                           "volume": float(rng.randint(5, 20)), "open_price": 800.0}]}  # fmt: skip


def _flood(seed: int = 7) -> list[dict]:
    """Records in the order one source sends them (one PUSH socket keeps that order)."""
    rng = random.Random(seed)
    ids = [f"F{i:05d}" for i in range(ACCOUNTS)]
    out = [_snapshot(a, rng) for a in ids]
    since = dict.fromkeys(ids, 0)
    orders = dict.fromkeys(ids, 0)
    settled = False
    while len(out) < FLOOD:
        if not settled and len(out) >= FLOOD // 2:
            settled = True
            out.append({"type": "settlement", "trading_day": "20260105",
                        "next_trading_day": "20260106", "prices": {INSTRUMENT: 805.0}})  # fmt: skip
        a = rng.choice(ids)
        since[a] += 1
        kind = rng.random()
        price = 800.0 + rng.randint(-20, 20)
        if since[a] >= RESNAPSHOT:
            since[a] = 0
            out.append(_snapshot(a, rng))
        elif kind < 0.3:
            out.append(
                {
                    "type": "trade",
                    "account_id": a,
                    "instrument": INSTRUMENT,
                    "direction": "long",
                    "offset": "open",
                    "volume": 1.0,
                    "price": price,
                }
            )
        elif kind < 0.45:
            out.append(
                {
                    "type": "trade",
                    "account_id": a,
                    "instrument": INSTRUMENT,
                    "direction": "short",
                    "offset": "close",
                    "volume": 1.0,
                    "price": price,
                }
            )
        elif kind < 0.6:
            out.append(
                {
                    "type": "deposit" if kind < 0.53 else "withdraw",
                    "account_id": a,
                    "amount": float(rng.randint(1, 50)),
                }
            )
        elif kind < 0.7:
            out.append(
                {"type": "update", "account_id": a, "frozen_margin": float(rng.randint(0, 99))}
            )
        elif kind < 0.85:  # an order that works, then ends (filled or cancelled)
            orders[a] += 1
            ref = f"{a}-O{orders[a]}"
            out.append(
                {
                    "type": "order",
                    "account_id": a,
                    "order_ref": ref,
                    "status": "working",
                    "instrument": INSTRUMENT,
                    "direction": "long",
                    "offset": "open",
                    "volume": 2.0,
                    "price": price,
                }
            )
            out.append(
                {
                    "type": "order",
                    "account_id": a,
                    "order_ref": ref,
                    "status": rng.choice(["filled", "cancelled"]),
                    "instrument": INSTRUMENT,
                    "direction": "long",
                    "offset": "open",
                    "volume": 2.0,
                    "price": price,
                }
            )
        elif kind < 0.95:
            out.append(
                {
                    "type": "order",
                    "account_id": a,
                    "order_ref": f"{a}-X",
                    "volume": 1.0,
                    "instrument": INSTRUMENT,
                }
            )  # behaviour only: no status
        else:
            out.append({"type": "cancel", "account_id": a, "order_ref": f"{a}-X"})
    return out


def _book() -> AccountBook:
    book = AccountBook(load_contract_table())
    book.set_prices([INSTRUMENT], np.array([810.0]), pre_settlement=np.array([800.0]))
    return book


def _apply(book: AccountBook, rec: dict) -> None:
    """What AccountShard does with each kind (actors/shard_intake.py); a record the book
    refuses (a close of more than is held) is rejected alone, as the shard does."""
    try:
        _apply_one(book, rec)
    except BookError:
        pass


def _apply_one(book: AccountBook, rec: dict) -> None:
    kind = rec["type"]
    if kind == "snapshot":
        book.apply_snapshot(rec)
    elif kind == "trade":
        book.apply_trade(rec)
    elif kind in ("deposit", "withdraw"):
        book.apply_transfer(rec["account_id"], rec["amount"], kind == "deposit")
    elif kind == "update":
        book.apply_update(rec)
    elif kind == "order" and "status" in rec:
        book.apply_order(rec)
    elif kind == "settlement":
        book.apply_settlement(rec)


def _views(book: AccountBook) -> dict[str, dict]:
    book.mark()
    out = {}
    for account in book.account_ids:
        view = book.account_view(account, mark=False)
        view["positions"] = [p for p in view["positions"] if p["volume"] > 0]
        out[account] = view
    return out


def _reached_heads(client: AccountBusClient, bus: AccountBus, into: AccountBook) -> bool:
    for rec in client.poll(100):
        _apply(into, rec)
    heads = bus.heads()
    return all(client.last_bseq()[b] == int(heads[b]) for b in ALL)


@pytest.fixture
def bus():
    endpoints = (free_tcp_endpoint(), free_tcp_endpoint(), free_tcp_endpoint())
    with AccountBus(*endpoints, log_size=LOG_SIZE) as running:
        yield running


def _send(bus: AccountBus, records: list[dict], start: int = 0) -> None:
    push = zmq.Context.instance().socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 5000)
    push.connect(bus.inbound_endpoint)
    for i in range(0, len(records), 500):
        push.send(encode_records("account_events", records[i : i + 500]))
    push.close()
    assert wait_until(lambda: bus.stats["received"] == start + len(records), 60)
    assert wait_until(lambda: bus.stats["held"] == bus.held(), 10)  # the last frame folded


def _flat(view: dict) -> dict[str, float | str]:
    """An account view as flat fields (positions by instrument and side)."""
    out: dict[str, float | str] = {}
    for key, value in view.items():
        if key == "positions":
            for p in value:
                for k, v in p.items():
                    out[f"{p['instrument']}.{p['direction']}.{k}"] = v
        elif not isinstance(value, list | dict):
            out[key] = value
    return out


def _same(got: dict, want: dict) -> bool:
    a, b = _flat(got), _flat(want)
    if set(a) != set(b):
        return False
    for k, v in b.items():
        if isinstance(v, float) and isinstance(a[k], float):
            if not (a[k] == pytest.approx(v, rel=1e-12, abs=1e-9) or (v != v and a[k] != a[k])):
                return False
        elif a[k] != v:
            return False
    return True


def test_a_flood_keeps_memory_bounded_and_a_late_subscriber_rebuilds_every_account(bus):
    records = _flood()
    reference = _book()
    for rec in records:
        _apply(reference, rec)
    half = next(i for i, r in enumerate(records) if r["type"] == "settlement")
    orders_after = sum(1 for r in records[half:] if r["type"] == "order" and "status" in r)
    first = AccountBusClient(bus.pub_endpoint, bus.snapshot_endpoint, ALL).connect()
    behind_book = _book()
    try:
        _send(bus, records[:half])
        assert wait_until(lambda: _reached_heads(first, bus, behind_book), 60)
        stopped_at = first.last_bseq()
    finally:
        first.close()  # it stops reading here; the log moves on past it
    _send(bus, records[half:], start=half)
    held = bus.held()
    # The log, per account its latest snapshot and the records since (under 2 × RESNAPSHOT:
    # an order is two records), the day's orders with a status, the settlement's copies.
    bound = LOG_SIZE + ACCOUNTS * 2 * RESNAPSHOT + orders_after + BUCKETS
    assert held <= bound < FLOOD // 2, (held, bound, bus.stats)
    assert bus.stats["superseded"] > FLOOD // 2, bus.stats
    late = AccountBusClient(bus.pub_endpoint, bus.snapshot_endpoint, ALL).connect()
    late_book = _book()
    try:
        assert wait_until(lambda: _reached_heads(late, bus, late_book), 60)
        assert late.stats["settlements"] == 1
    finally:
        late.close()
    # A consumer that kept its book and comes back behind the log: the compacted records
    # after its last bseq, then the log.
    behind = AccountBusClient(bus.pub_endpoint, bus.snapshot_endpoint, ALL, start=stopped_at)
    behind.connect()
    try:
        assert wait_until(lambda: _reached_heads(behind, bus, behind_book), 60)
        assert behind.stats["settlements"] == 1
    finally:
        behind.close()
    assert bus.stats["compacted_replies"] >= 2 * len(ALL), "both replies came from compaction"
    want = _views(reference)
    assert len(want) == ACCOUNTS
    for name, book in (("late", late_book), ("behind", behind_book)):
        got = _views(book)
        assert set(got) == set(want), name
        wrong = [a for a in want if not _same(got[a], want[a])]
        assert not wrong, (name, len(wrong), _flat(got[wrong[0]]), _flat(want[wrong[0]]))


def test_log_size_is_checked():
    with pytest.raises(ValueError, match="log_size"):
        AccountBus("tcp://127.0.0.1:1", "tcp://127.0.0.1:2", "tcp://127.0.0.1:3", log_size=0)
