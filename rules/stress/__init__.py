"""Stress tests on a book: scenarios as data, their evaluation and the reverse stress (pure)."""

from rules.stress.evaluate import StressResult, evaluate, merge_results
from rules.stress.reverse import ReverseStress, reverse_stress
from rules.stress.scenarios import (
    Move,
    Scenario,
    ScenarioError,
    StressPrices,
    scenario_from_record,
    scenario_to_record,
    scenarios_from_records,
    stressed_prices,
    uniform,
)

__all__ = ["Move", "ReverseStress", "Scenario", "ScenarioError", "StressPrices", "StressResult",
           "evaluate", "merge_results", "reverse_stress", "scenario_from_record", "scenario_to_record",
           "scenarios_from_records", "stressed_prices", "uniform"]  # fmt: skip
