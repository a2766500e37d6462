"""Property-based fuzzing of the wire codec: any bytes in, a frame or a CodecError out.

A feed or a bus that meets garbage must count it and go on; that holds only if the codec never
raises anything but CodecError, whatever arrives (truncated frames, wrong types, huge counts,
deep nesting), and if every frame it encodes decodes to the same thing.
"""

from __future__ import annotations

import msgpack
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.codec import CodecError, decode_records, decode_ticks, encode_records, encode_ticks
from rules.model import TickBatch

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

leaf = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(),
                 st.text(max_size=20), st.binary(max_size=40))  # fmt: skip
values = st.recursive(leaf, lambda kids: st.one_of(st.lists(kids, max_size=5),
                      st.dictionaries(st.text(max_size=8), kids, max_size=5)), max_leaves=30)  # fmt: skip


def _decodes_or_refuses(payload: bytes) -> None:
    for decode in (decode_ticks, decode_records):
        try:
            decode(payload)
        except CodecError:
            pass


@FUZZ
@given(st.binary(max_size=2000))
def test_any_bytes_decode_or_raise_codec_error(payload: bytes) -> None:
    _decodes_or_refuses(payload)


@FUZZ
@given(st.dictionaries(st.sampled_from(["v", "kind", "n", "instruments", "cols", "records",
                                        "sent_ts", "x"]), values, max_size=7))  # fmt: skip
def test_any_msgpack_map_decodes_or_raises_codec_error(frame: dict) -> None:
    _decodes_or_refuses(msgpack.packb(frame, use_bin_type=True))


@FUZZ
@given(st.dictionaries(st.sampled_from(["instrument_idx", "last", "volume", "bid"]),
                       st.binary(max_size=64), max_size=4),
       st.integers(-5, 20), st.lists(st.text(max_size=6), max_size=4))  # fmt: skip
def test_tick_frames_with_wrong_columns_are_refused_with_a_reason(cols, n, names) -> None:
    frame = {"v": 1, "kind": "ticks", "n": n, "instruments": names, "cols": cols}
    try:
        batch = decode_ticks(msgpack.packb(frame, use_bin_type=True))
    except CodecError as exc:
        assert str(exc)
        return
    assert len(batch) == n and int(batch.instrument_idx.max(initial=0)) < max(len(names), 1)


finite_or_not = st.floats(allow_nan=True, allow_infinity=True, width=64)


@FUZZ
@given(
    st.lists(st.tuples(st.integers(0, 3), finite_or_not, finite_or_not), min_size=0, max_size=50)
)
def test_tick_frames_round_trip(rows) -> None:
    n = len(rows)
    idx = np.array([r[0] for r in rows], dtype=np.uint32)
    last = np.array([r[1] for r in rows], dtype=float)
    bid = np.array([r[2] for r in rows], dtype=float)
    nan = np.full(n, np.nan)
    batch = TickBatch(["rb2601", "hc2601", "i2601", "cu2601"], idx, last, nan, nan, bid, nan,
                      np.arange(n, dtype=float), nan, nan, nan, sent_ts=1.5)  # fmt: skip
    back = decode_ticks(encode_ticks(batch))
    assert back.instruments == batch.instruments and back.sent_ts == 1.5
    np.testing.assert_array_equal(back.instrument_idx, idx)
    np.testing.assert_array_equal(back.last, last)  # NaN == NaN position-wise here
    np.testing.assert_array_equal(back.bid, bid)


@FUZZ
@given(st.lists(st.dictionaries(st.text(max_size=8), leaf, max_size=6), max_size=20))
def test_record_frames_round_trip(records) -> None:
    kind, back = decode_records(encode_records("account_events", records), "account_events")
    assert kind == "account_events" and len(back) == len(records)


def test_deep_nesting_is_refused_not_a_recursion_error() -> None:
    deep: object = 1
    for _ in range(5000):
        deep = [deep]
    try:
        payload = msgpack.packb({"v": 1, "kind": "account_events", "records": [{"x": deep}]})
    except (ValueError, RecursionError):
        payload = b"\x91" * 5000 + b"\x01"  # msgpack refuses to pack it: hand-make the bytes
    _decodes_or_refuses(payload)
