"""Correlation-aware scenarios: move the drivers, let the rest follow their history.

"rb −7%" alone leaves hot-rolled coil and iron ore where they were, which no risk manager believes.
Given the covariance Σ of daily log returns between products, the expected return of the others
conditional on the drivers' returns r_d is Σ_od Σ_dd⁻¹ r_d (the regression of each product on the
drivers, the usual Gaussian conditional mean). Products with too little common history are left
out rather than guessed. Pure: the covariance comes from `infra.stress_io`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from rules.stress.scenarios import Move, Scenario, ScenarioError


def log_return_covariance(returns: np.ndarray) -> np.ndarray:
    """Covariance of a (days × products) matrix of log returns, rows with NaN left out pairwise."""
    r = np.asarray(returns, dtype=float)
    ok = np.isfinite(r)
    x = np.where(ok, r, 0.0)
    n = ok.T.astype(float) @ ok.astype(float)
    sums = x.T @ ok.astype(float)  # sum of i's returns on days j is present too
    prod = x.T @ x
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = (prod - sums * sums.T / n) / (n - 1)
    cov[n < 20] = np.nan  # under a month of common days is no estimate
    return cov


def conditional_moves(
    products: Sequence[str], cov: np.ndarray, drivers: Mapping[str, float]
) -> dict[str, float]:
    """Percent moves of every product given percent moves of the drivers."""
    index = {p: i for i, p in enumerate(products)}
    missing = [d for d in drivers if d not in index]
    if missing:
        raise ScenarioError(f"no history for driver product(s) {', '.join(missing)}")
    d = np.array([index[p] for p in drivers])
    r_d = np.log1p(np.array([drivers[p] for p in drivers], dtype=float) / 100.0)
    s_dd = cov[np.ix_(d, d)]
    if not np.all(np.isfinite(s_dd)):
        raise ScenarioError("drivers have too little common history for a covariance")
    beta = np.linalg.solve(s_dd + 1e-12 * np.eye(d.size), r_d)
    out: dict[str, float] = {}
    for product, i in index.items():
        if product in drivers:
            out[product] = float(drivers[product])
            continue
        s_od = cov[i, d]
        if not np.all(np.isfinite(s_od)):
            continue
        out[product] = float(math.expm1(float(s_od @ beta)) * 100.0)
    return out


def correlated(scenario: Scenario, products: Sequence[str], cov: np.ndarray) -> Scenario:
    """The scenario with every product of the covariance moved conditionally on its product moves."""
    for move in scenario.moves:
        if move.scope != "product" or move.pct is None:
            raise ScenarioError(
                f"scenario {scenario.name!r}: a correlated scenario moves products by pct only"
            )
    drivers = {name: move.pct for move in scenario.moves for name in move.names}
    # Drivers without history still move as the scenario says; they just cannot condition.
    known = {p: v for p, v in drivers.items() if p in set(products)}
    if not known:
        raise ScenarioError(f"scenario {scenario.name!r}: no driver product has price history")
    moves = {**drivers, **conditional_moves(products, cov, known)}  # type: ignore[arg-type]
    return Scenario(
        f"{scenario.name}~corr",
        f"{scenario.description} (others by historical covariance)".strip(),
        tuple(Move("product", (p,), pct=v) for p, v in sorted(moves.items())),
        scenario.cap_at_limit,
        scenario.reference,
    )
