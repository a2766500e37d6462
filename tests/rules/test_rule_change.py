"""Period over period (环比): against the last window's close, the mean or the z-score of the
last n closes; tumbling windows on the clock; every key judged when a window turns."""

from __future__ import annotations

import numpy as np
import pytest

from rules.engine.evaluator import RuleEngine
from rules.engine.spec import RuleSpec

W = 10.0
T0 = 1_700_000_000.0 - (1_700_000_000.0 + 8 * 3600) % W  # a window edge


def change(**params) -> RuleSpec:
    op = params.pop("op", "<")
    thr = params.pop("threshold", -0.2)
    rearm = params.pop("rearm", -0.1)
    return RuleSpec(id="c", kind="change", metric="equity", op=op, threshold=thr, rearm=rearm,
                    params={"window_s": W, **params})  # fmt: skip


def run(engine: RuleEngine, values: dict[float, list[float]]) -> list[tuple[float, int, float]]:
    out = []
    everyone = np.arange(len(next(iter(values.values()))))
    for ts, v in sorted(values.items()):
        arr = np.array(v)
        for f in engine.evaluate(
            lambda m, r, a=arr: a[r], everyone[:1], ts, universe=lambda: everyone
        ):
            out += [(ts, int(r), float(x)) for r, x in zip(f.rows, f.values, strict=True)]
    return out


def test_against_the_previous_windows_close():
    engine = RuleEngine([change(compare="previous", mode="pct")])
    fired = run(engine, {T0 + 1: [100.0, 100.0], T0 + 5: [100.0, 90.0], T0 + 11: [100.0, 90.0],
                         T0 + 12: [75.0, 90.0], T0 + 21: [75.0, 90.0]})  # fmt: skip
    # window 1 closes at (100, 90); key 0 falls 25% in window 2; key 1 never moves across windows
    assert fired == [(T0 + 12, 0, pytest.approx(-0.25))]


def test_a_new_window_judges_keys_that_did_not_move():
    engine = RuleEngine([change(compare="previous", mode="diff", op=">", threshold=5.0, rearm=1.0)])
    # only key 0 is ever among the re-marked rows; a window's first evaluation looks at every
    # key, so key 1's value of 30 against the close of 10 is judged there
    values = {T0 + 1: [10.0, 10.0], T0 + 11: [10.0, 30.0], T0 + 21: [10.0, 30.0]}
    fired = run(engine, values)
    assert fired == [(T0 + 11, 1, 20.0)]


def test_mean_and_zscore_of_the_last_windows_with_minimum_history():
    mean = RuleEngine([change(compare="mean", mode="ratio", n=3, op=">", threshold=2.0, rearm=1.5)])
    z = RuleEngine([change(compare="zscore", n=3, op=">", threshold=3.0, rearm=1.0)])
    series = {T0 + 1 + W * k: [v] for k, v in enumerate([10.0, 12.0, 8.0, 10.0, 25.0])}
    assert [(round(x, 3)) for _, _, x in run(mean, series)] == [2.5]  # 25 / mean(12, 8, 10)
    zs = run(z, series)
    assert len(zs) == 1 and zs[0][0] == T0 + 1 + 4 * W
    assert zs[0][2] == pytest.approx((25 - 10) / np.std([12.0, 8.0, 10.0]))
    early = RuleEngine(
        [change(compare="mean", mode="ratio", n=3, op=">", threshold=2.0, rearm=1.5)]
    )
    assert run(early, {T0 + 1: [1.0], T0 + 11: [100.0]}) == []  # one close is no mean of three


def test_rolls_at_window_edges_only():
    [g] = RuleEngine([change()]).groups
    assert g.rolls(None, T0)
    assert not g.rolls(T0 + 1, T0 + 9.9)
    assert g.rolls(T0 + 9.9, T0 + 10.0)
