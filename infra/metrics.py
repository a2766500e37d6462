"""Metrics through ray.util.metrics, so they show with the Ray dashboard's Prometheus/Grafana.

Each actor creates its metrics once; the tag `actor` says which instance. Outside Ray (tools,
gateway processes) prometheus-client serves the same names.
"""

from __future__ import annotations

from ray.util import metrics


def counter(name: str, description: str, tag_keys: tuple[str, ...] = ("actor",)) -> metrics.Counter:
    return metrics.Counter(f"fengkong_{name}", description=description, tag_keys=tag_keys)


def gauge(name: str, description: str, tag_keys: tuple[str, ...] = ("actor",)) -> metrics.Gauge:
    return metrics.Gauge(f"fengkong_{name}", description=description, tag_keys=tag_keys)


def histogram(
    name: str, description: str, boundaries: list[float], tag_keys: tuple[str, ...] = ("actor",)
) -> metrics.Histogram:
    return metrics.Histogram(
        f"fengkong_{name}", description=description, boundaries=boundaries, tag_keys=tag_keys
    )


LATENCY_MS_BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000]


_GAUGES: dict[str, metrics.Gauge] = {}


def set_gauge(name: str, description: str, value: float, tags: dict[str, str]) -> None:
    """Set a gauge created on first use (one per name and process): for a figure a caller
    updates from one place without owning a metrics object."""
    g = _GAUGES.get(name)
    if g is None:
        g = _GAUGES[name] = gauge(name, description, tag_keys=tuple(tags))
    g.set(value, tags=tags)
