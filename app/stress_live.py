"""Stress on a running system: every shard evaluates the scenario on its live book, merged."""

from __future__ import annotations

from typing import Any

from rules.stress import StressResult, merge_results
from rules.stress.scenarios import Scenario, scenario_to_record


def live_stress(shards: list[Any], scenario: Scenario, target: float) -> StressResult:
    """Every shard evaluates the scenario on its live columns (one call each); merged."""
    import ray

    if not 0 < target <= 1:
        raise ValueError(f"--target must be in (0, 1], got {target!r}")
    record = scenario_to_record(scenario)
    return merge_results(ray.get([s.stress.remote(record, target) for s in shards]))
