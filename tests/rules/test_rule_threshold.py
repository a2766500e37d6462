"""The threshold bank: exactly the scalar reference hysteresis (tests.rules.scalar_hysteresis), for many rules at once, step by
step or over a path of steps, and a screen that never misses a transition."""

from __future__ import annotations

import numpy as np
import pytest

from rules.engine.evaluator import RuleEngine
from rules.engine.kinds.threshold import ThresholdBank
from rules.engine.spec import RuleSpec
from tests.rules.scalar_hysteresis import HysteresisState, ThresholdRule, evaluate


def bank_of(op: str, rng: np.random.Generator, n_rules: int = 12) -> list[RuleSpec]:
    specs = []
    for i in range(n_rules):
        t = float(rng.choice([0.5, 0.6, 0.7, 0.8, 0.9]))
        gap = 0.05 * int(rng.integers(0, 3))
        specs.append(
            RuleSpec(id=f"r{i}", op=op, threshold=t, rearm=t - gap if op[0] == ">" else t + gap)
        )
    return specs


def sequence(rng: np.random.Generator, steps: int, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for _ in range(steps):
        rows = np.sort(rng.choice(n, int(rng.integers(1, n)), replace=False))
        v = np.round(rng.uniform(0.3, 1.1, rows.size), 2)
        v[rng.random(rows.size) < 0.05] = np.nan
        out.append((rows, v))
    return out


@pytest.mark.parametrize("n_rules", [12, 1])  # 1: the element-wise path of one-rule banks
@pytest.mark.parametrize("op", [">", ">=", "<", "<="])
def test_bank_equals_the_scalar_hysteresis(op, n_rules):
    rng = np.random.default_rng(1)
    specs = bank_of(op, rng, n_rules)
    bank = ThresholdBank(specs)
    scalar = [
        (ThresholdRule(s.id, "m", op, s.threshold, s.rearm_level), HysteresisState()) for s in specs
    ]
    for _, state in scalar:
        state.resize(40)
    for rows, v in sequence(rng, 300, 40):
        got = {
            (f.spec.id, int(r), int(e))
            for f in bank.evaluate_values(v, rows)
            for r, e in zip(f.rows, f.episodes, strict=True)
        }
        want = set()
        for rule, state in scalar:
            want |= {
                (rule.rule_id, int(r), int(state.episode[r]))
                for r in evaluate(rule, v, state, rows)
            }
        assert got == want
    for i, (_, state) in enumerate(scalar):
        assert (bank.armed[i, :40] == state.armed).all()


@pytest.mark.parametrize("op", [">", "<="])
def test_a_path_of_steps_equals_step_by_step(op):
    rng = np.random.default_rng(2)
    specs = bank_of(op, rng, 6)
    step_bank, path_bank = ThresholdBank(specs), ThresholdBank(specs)
    rows = np.arange(30)
    for _ in range(20):
        values = np.round(rng.uniform(0.4, 1.0, (16, rows.size)), 2)
        want = [(k, f.spec.id, r, e) for k in range(16) for f in step_bank.evaluate_values(values[k], rows)
                for r, e in zip(f.rows.tolist(), f.episodes.tolist(), strict=True)]  # fmt: skip
        got = [(k, f.spec.id, r, e) for k, f in path_bank.evaluate_path(values, rows, np.arange(16), np.zeros(16))
               for r, e in zip(f.rows.tolist(), f.episodes.tolist(), strict=True)]  # fmt: skip
        assert sorted(got) == sorted(want)
        assert (step_bank.armed == path_bank.armed).all()
        assert (step_bank.disarmed == path_bank.disarmed).all()


def test_screen_never_misses_a_transition():
    """Rows the screen calls certain for [lo, hi] change no state for any value in it."""
    rng = np.random.default_rng(3)
    specs = bank_of(">", rng, 8)
    for _ in range(200):
        bank = ThresholdBank(specs)
        rows = np.arange(25)
        bank.evaluate_values(np.round(rng.uniform(0.3, 1.1, 25), 2), rows)
        lo = np.round(rng.uniform(0.3, 1.0, 25), 2)
        hi = lo + np.round(rng.uniform(0, 0.2, 25), 2)
        certain = ~bank.uncertain(lo, hi, rows, 0.0)
        armed = bank.armed.copy()
        for x in np.linspace(0, 1, 7):
            probe = ThresholdBank(specs)
            probe.resize(25)
            probe.armed[:, :25] = armed[:, :25]
            probe.disarmed[:25] = (~armed[:, :25]).sum(axis=0)
            probe.evaluate_values(lo + x * (hi - lo), rows)
            assert (probe.armed[:, :25][:, certain] == armed[:, :25][:, certain]).all()


def test_a_thousand_rules_cost_one_bank_and_fire_right():
    specs = [
        RuleSpec(id=f"x{i}", threshold=5.0 + i, rearm=4.9 + i, severity="info") for i in range(1000)
    ]
    specs.append(RuleSpec(id="warn", threshold=0.8, rearm=0.75))
    engine = RuleEngine(specs)
    assert len(engine.groups) == 1
    values = np.array([0.5, 0.85, 7.5])
    fired = engine.evaluate(lambda m, r: values[r], np.arange(3), 0.0)
    got = sorted((f.spec.id, int(r)) for f in fired for r in f.rows)
    assert got == [("warn", 1), ("warn", 2), ("x0", 2), ("x1", 2), ("x2", 2)]
    assert engine.evaluate(lambda m, r: values[r], np.arange(3), 1.0) == []  # disarmed now


def test_replace_keeps_the_state_of_unchanged_rules():
    warn = RuleSpec(id="warn", threshold=0.8, rearm=0.75)
    engine = RuleEngine([warn])
    high = np.array([0.9, 0.9])
    assert [f.spec.id for f in engine.evaluate(lambda m, r: high[r], np.arange(2), 0.0)] == ["warn"]
    report = engine.replace([warn, RuleSpec(id="sixty", threshold=0.6, rearm=0.55)])
    assert report["kept"] == ["warn"] and report["added"] == ["sixty"]
    fired = engine.evaluate(lambda m, r: high[r], np.arange(2), 1.0)
    assert [f.spec.id for f in fired] == ["sixty"]  # warn did not fire again
    engine.replace([RuleSpec(id="warn", threshold=0.85, rearm=0.75)])  # changed: starts afresh
    assert [f.spec.id for f in engine.evaluate(lambda m, r: high[r], np.arange(2), 2.0)] == ["warn"]
