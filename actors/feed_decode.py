"""Many tick frames decoded as one columnar batch: the ingest half of the flood defence.

Why not `infra.codec.decode_ticks` per frame: a flood of one-tick frames (80,000 in 2 s) made
the feed spend its time on per-frame work (a TickBatch, ten `np.frombuffer` calls and a
statistics update per frame; the feed folded ~480 frames/s and fell minutes behind). Here
each frame costs one msgpack unpack and a few list appends; the columns of every good frame
are joined and turned into arrays once per round, so the statistics fold the whole round in
one vectorized update and the fan-out sends the latest price per contract.

The checks are those of `decode_ticks` (schema version, kind, row count, instrument names,
column sizes, instrument index in range), applied per frame: a bad frame is rejected alone
with its reason and the good frames of the round go on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgpack
import numpy as np

from infra.codec import OPTIONAL_TICK_COLUMNS, SCHEMA_VERSION, TICK_COLUMNS

_FLOAT_COLUMNS = [name for name in TICK_COLUMNS if name != "instrument_idx"]
_ITEMSIZE = {name: np.dtype(dtype).itemsize for name, dtype in TICK_COLUMNS.items()}


@dataclass
class Round:
    """The good ticks of a round of frames, in arrival order, one array per field."""

    names: list[str]  # instrument names of every frame, concatenated
    name_start: np.ndarray  # per tick: where its frame's names start in `names`
    local_idx: np.ndarray  # per tick: index into its frame's names
    arrival: np.ndarray  # per tick: when its frame was taken off the socket (wall time)
    sent_ts: np.ndarray  # per tick: the publisher's stamp of its frame
    cols: dict[str, np.ndarray]  # float columns (last, volume, ..., exchange_ts)
    frames: int = 0  # good frames
    rejects: list[tuple[str, str]] = field(default_factory=list)  # (reason, one-line detail)

    def __len__(self) -> int:
        return int(self.local_idx.shape[0])

    def take(self, keep: np.ndarray) -> Round:
        """The ticks where `keep` is true (names are shared)."""
        return Round(
            self.names, self.name_start[keep], self.local_idx[keep], self.arrival[keep],
            self.sent_ts[keep], {k: v[keep] for k, v in self.cols.items()}, self.frames,
            self.rejects,
        )  # fmt: skip


def _frame_problem(parts: list[bytes]) -> tuple[str | None, dict | None]:
    """(why the frame is malformed, None) or (None, the unpacked frame)."""
    if len(parts) != 2:
        return f"{len(parts)} message parts, expected 2", None
    try:
        frame = msgpack.unpackb(parts[1], raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated types
        return f"not a msgpack frame: {type(exc).__name__}: {exc}", None
    if not isinstance(frame, dict):
        return f"frame is a {type(frame).__name__}, expected a map", None
    if frame.get("v") != SCHEMA_VERSION:
        return f"schema version {frame.get('v')!r} not supported (expected {SCHEMA_VERSION})", None
    if frame.get("kind") != "ticks":
        return f"frame kind {frame.get('kind')!r}, expected 'ticks'", None
    n, instruments, cols = frame.get("n"), frame.get("instruments"), frame.get("cols")
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        return f"bad row count n={n!r}", None
    if not isinstance(instruments, list) or not all(isinstance(s, str) for s in instruments):
        return "'instruments' must be a list of strings", None
    if not isinstance(cols, dict):
        return "'cols' must be a map of column name to bytes", None
    for name in TICK_COLUMNS:
        raw = cols.get(name)
        if raw is None and name in OPTIONAL_TICK_COLUMNS:
            continue
        if not isinstance(raw, bytes):
            return f"column {name!r} missing or not bytes", None
        if len(raw) != n * _ITEMSIZE[name]:
            return f"column {name!r} has {len(raw)} bytes, expected {n} × {_ITEMSIZE[name]}", None
    return None, frame


def decode_round(frames: list[tuple[float, list[bytes]]]) -> Round:
    """Decode `(arrival, parts)` frames into one Round; malformed frames are listed in
    `rejects` (reason "malformed_frame") and left out."""
    names: list[str] = []
    starts: list[int] = []
    counts: list[int] = []
    n_names: list[int] = []
    arrivals: list[float] = []
    sent: list[float] = []
    raw: dict[str, list[bytes]] = {name: [] for name in TICK_COLUMNS}
    rejects: list[tuple[str, str]] = []
    for arrival, parts in frames:
        problem, frame = _frame_problem(parts)
        if problem is not None:
            rejects.append(("malformed_frame", problem))
            continue
        assert frame is not None
        n, cols = frame["n"], frame["cols"]
        starts.append(len(names))
        names.extend(frame["instruments"])
        n_names.append(len(frame["instruments"]))
        counts.append(n)
        arrivals.append(arrival)
        stamp = frame.get("sent_ts", 0.0)
        sent.append(float(stamp) if isinstance(stamp, int | float) else 0.0)
        for name in TICK_COLUMNS:
            col = cols.get(name)
            # An absent optional column is NaN: 8 bytes of NaN per row.
            raw[name].append(col if col is not None else _NAN8 * n)
    count = np.asarray(counts, dtype=np.int64)
    frame_of = np.repeat(np.arange(count.shape[0]), count)
    local = np.frombuffer(b"".join(raw["instrument_idx"]), dtype="<u4").astype(np.int64)
    limit = np.asarray(n_names, dtype=np.int64)[frame_of]
    out_of_range = local >= limit
    arrays = {name: np.frombuffer(b"".join(raw[name]), dtype="<f8") for name in _FLOAT_COLUMNS}
    rnd = Round(
        names, np.asarray(starts, dtype=np.int64)[frame_of], local,
        np.asarray(arrivals, dtype=float)[frame_of], np.asarray(sent, dtype=float)[frame_of],
        arrays, int(count.shape[0]), rejects,
    )  # fmt: skip
    if out_of_range.any():  # whole frames go, as decode_ticks would reject them
        bad_frames = np.unique(frame_of[out_of_range])
        for f in bad_frames.tolist():
            rejects.append(("malformed_frame", f"instrument_idx out of range ({n_names[f]} names)"))
        keep = ~np.isin(frame_of, bad_frames)
        rnd = rnd.take(keep)
        rnd.frames -= int(bad_frames.shape[0])
    return rnd


_NAN8 = np.array([np.nan], dtype="<f8").tobytes()
