"""The behaviour anomaly model: fitted on ordinary windows, it flags the injected ones."""

from __future__ import annotations

import numpy as np
import pytest

from rules.anomaly import FEATURES, AnomalyModel, detection_figures, feature_matrix, fit


def _windows(rng: np.random.Generator, n: int, windows: int, own: dict | None = None,
             spoof: np.ndarray | None = None) -> tuple[np.ndarray, dict]:  # fmt: skip
    rate = np.linspace(0.5, 20, n)
    raw = []
    for _ in range(windows):
        orders = rng.poisson(rate).astype(float)
        cancels = rng.binomial(orders.astype(int), 0.3).astype(float)
        if spoof is not None:
            orders = np.where(spoof, orders * 10 + 30, orders)
            cancels = np.where(spoof, np.floor(orders * 0.97), cancels)
        raw.append({"orders": orders, "cancels": cancels, "trades": (orders - cancels) * 0.5,
                    "self_trades": np.zeros(n), "turnover": orders * 1000.0,
                    "withdraw": np.zeros(n), "equity": np.full(n, 1e6)})  # fmt: skip
    means = {k: np.mean([w[k] for w in raw], axis=0) for k in ("orders", "cancels", "turnover")}
    return np.vstack([feature_matrix(w, own or means) for w in raw]), means


def test_fit_flags_spoofing_at_the_chosen_alarm_rate() -> None:
    rng = np.random.default_rng(11)
    train, own = _windows(rng, 400, 30)
    model = fit(train, alarm_rate=0.01)
    ordinary, _ = _windows(rng, 400, 10, own)
    assert (model.score(ordinary) > model.threshold).mean() < 0.03
    spoof = np.zeros(400, dtype=bool)
    spoof[::40] = True
    test, _ = _windows(rng, 400, 1, own, spoof)
    flagged = model.score(test) > model.threshold
    d = detection_figures(flagged, spoof, accounts=400, days=1.0)
    assert d.recall == 1.0 and d.precision > 0.5
    assert set(model.explain(test[spoof])) <= {"orders", "cancels", "cancel_ratio", "orders_vs_own",
                                               "cancel_ratio_vs_own", "trades", "turnover_vs_own",
                                               "turnover_ratio"}  # fmt: skip


def test_model_round_trips_and_is_versioned_by_content() -> None:
    rng = np.random.default_rng(5)
    train, _ = _windows(rng, 100, 10)
    model = fit(train)
    again = AnomalyModel.from_record(model.to_record())
    assert again.version == model.version and np.allclose(again.score(train), model.score(train))
    other = fit(train, alarm_rate=0.01)
    assert other.version != model.version
    bad = {**model.to_record(), "features": ["x"]}
    with pytest.raises(ValueError, match="not"):
        AnomalyModel.from_record(bad)


def test_fit_refuses_too_little_history() -> None:
    with pytest.raises(ValueError, match="at least 50 rows"):
        fit(np.zeros((10, len(FEATURES))))
