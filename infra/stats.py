"""Latency figures kept in a bounded ring, so an actor can answer p50/p99 without growing."""

from __future__ import annotations

import numpy as np


class LatencyRing:
    def __init__(self, capacity: int = 100_000) -> None:
        self._values = np.zeros(capacity)
        self._n = 0

    def add(self, values_ms: np.ndarray | list[float] | float) -> None:
        arr = np.atleast_1d(np.asarray(values_ms, dtype=np.float64))
        cap = self._values.shape[0]
        for start in range(0, arr.shape[0], cap):
            chunk = arr[start : start + cap]
            pos = self._n % cap
            end = pos + chunk.shape[0]
            if end <= cap:
                self._values[pos:end] = chunk
            else:
                split = cap - pos
                self._values[pos:] = chunk[:split]
                self._values[: end - cap] = chunk[split:]
            self._n += chunk.shape[0]

    @property
    def count(self) -> int:
        return self._n

    def percentiles(self, qs: tuple[float, ...] = (50, 99)) -> dict[str, float]:
        n = min(self._n, self._values.shape[0])
        if n == 0:
            return {f"p{q:g}": float("nan") for q in qs}
        values = np.percentile(self._values[:n], qs)
        return {f"p{q:g}": float(v) for q, v in zip(qs, values, strict=True)}

    def values(self) -> np.ndarray:
        return self._values[: min(self._n, self._values.shape[0])].copy()
