"""The feed's round decoder (actors/feed_decode.py) judges frames as `decode_ticks` does.

The round decoder exists for speed (one unpack per frame, columns joined once per round); it
must not become a second, looser codec. For any mix of good frames, garbage and near-misses
(a wrong version, a short column, an index out of range), a frame is rejected by the round
decoder exactly when `decode_ticks` refuses it, and the good frames' ticks come out the same,
in arrival order.
"""

from __future__ import annotations

import msgpack
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.feed_decode import decode_round
from infra.codec import CodecError, decode_ticks, encode_ticks
from rules.model import TickBatch

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _good(names: list[str], n: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    col = lambda: rng.normal(3000, 10, n)  # noqa: E731
    idx = rng.integers(0, len(names), n).astype(np.uint32)
    return encode_ticks(TickBatch(names, idx, col(), col(), col(), col(), col(), col(), col(),
                                  col(), col(), sent_ts=1.5))  # fmt: skip


def _near_miss(kind: int, payload: bytes) -> bytes:
    frame = msgpack.unpackb(payload, raw=False)
    if kind == 0:
        frame["v"] = 2
    elif kind == 1:
        frame["cols"]["last"] = frame["cols"]["last"][:-1]
    elif kind == 2:
        frame["cols"]["instrument_idx"] = np.full(frame["n"], 99, dtype="<u4").tobytes()
    elif kind == 3:
        del frame["cols"]["volume"]  # optional: a good frame with NaN volume
    else:
        frame["instruments"] = [1, 2]
    return msgpack.packb(frame, use_bin_type=True)


frames = st.lists(
    st.one_of(
        st.tuples(st.just("good"), st.integers(0, 5), st.integers(0, 10_000)),
        st.tuples(st.just("miss"), st.integers(0, 4), st.integers(0, 10_000)),
        st.tuples(st.just("junk"), st.binary(max_size=60), st.just(0)),
    ),
    max_size=12,
)


@FUZZ
@given(frames)
def test_the_round_decoder_accepts_and_refuses_what_decode_ticks_does(spec) -> None:
    parts_list = []
    for what, a, b in spec:
        if what == "junk":
            parts_list.append([b"T", a])
            continue
        payload = _good(["rb2601", "cu2601"], a + (what == "miss"), b)
        parts_list.append([b"T", payload if what == "good" else _near_miss(a, payload)])
    parts_list.append([b"T"])  # one part only: always refused
    expected = []
    for parts in parts_list:
        try:
            expected.append(decode_ticks(parts[1]) if len(parts) == 2 else None)
        except CodecError:
            expected.append(None)
    rnd = decode_round([(float(i), parts) for i, parts in enumerate(parts_list)])
    good = [b for b in expected if b is not None]
    assert len(rnd.rejects) == len(expected) - len(good)
    assert rnd.frames == len(good)
    want_names = [b.instruments[i] for b in good for i in b.instrument_idx]
    got_names = [rnd.names[s + i] for s, i in zip(rnd.name_start, rnd.local_idx, strict=True)]
    assert got_names == want_names
    for col in ("last", "volume", "exchange_ts", "pre_settlement"):
        want = np.concatenate([getattr(b, col) for b in good]) if good else np.zeros(0)
        np.testing.assert_array_equal(rnd.cols[col], want)
    arrivals = [float(i) for i, b in enumerate(expected) if b is not None for _ in range(len(b))]
    np.testing.assert_array_equal(rnd.arrival, np.array(arrivals))
