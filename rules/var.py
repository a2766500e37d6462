"""One-day Value at Risk of an exposure: historical simulation and variance-covariance.

Both start from the same window of daily profit-and-loss scenarios: today's exposure revalued
with each past day's relative price change (`pnl_scenarios`). Relative changes, not absolute
ones, so a window spanning a doubling of the price level does not understate today's risk.

- historical VaR at confidence c: the k-th worst scenario loss, k = ceil(n × (1 − c)), no
  interpolation (with 100 days, 95% is the 5th worst loss, 99% the worst);
- parametric VaR: z_c × the sample standard deviation of the scenarios (n − 1), which is
  sqrt(wᵀ Σ w) for the exposure vector w and the sample covariance Σ of the returns; the
  expected one-day P&L is taken as zero (a window's drift is no forecast).

A total over several books sums their scenarios day by day on the days all of them have, so
hedges and correlations between books net out (`aligned_total`).

Pure: numpy and stdlib only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date
from statistics import NormalDist

import numpy as np

CONFIDENCES = (0.95, 0.99)


def z_score(confidence: float) -> float:
    if not 0.5 < confidence < 1:
        raise ValueError(f"confidence must be in (0.5, 1), got {confidence}")
    return NormalDist().inv_cdf(confidence)


def returns(prices: Mapping[date, float]) -> dict[date, float]:
    """Relative change of each day against the previous day present in the series."""
    days = sorted(d for d, p in prices.items() if p is not None and math.isfinite(p) and p > 0)
    return {b: prices[b] / prices[a] - 1.0 for a, b in zip(days[:-1], days[1:], strict=True)}


def pnl_scenarios(
    exposures: Sequence[float], factor_returns: Sequence[Mapping[date, float]], window: int
) -> dict[date, float]:
    """P&L per past day of exposures (money per factor) under that day's factor returns.

    Only days every factor has are used, the latest `window` of them.
    """
    if len(exposures) != len(factor_returns):
        raise ValueError("one return series per exposure")
    if not factor_returns:
        return {}
    common = set(factor_returns[0])
    for series in factor_returns[1:]:
        common &= set(series)
    days = sorted(common)[-window:] if window > 0 else []
    w = np.asarray(exposures, dtype=float)
    r = np.array([[series[d] for series in factor_returns] for d in days]).reshape(len(days), -1)
    pnl = r @ w
    return dict(zip(days, pnl.tolist(), strict=True))


def historical_var(pnl: Sequence[float] | np.ndarray, confidence: float) -> float:
    """The k-th worst loss, k = ceil(n (1 − c)); nan without scenarios; never negative."""
    values = np.sort(np.asarray(pnl, dtype=float))
    n = values.shape[0]
    if n == 0:
        return float("nan")
    k = max(1, math.ceil(round(n * (1.0 - confidence), 9)))
    return max(0.0, -float(values[k - 1]))


def parametric_var(pnl: Sequence[float] | np.ndarray, confidence: float) -> float:
    """z_c × the sample standard deviation of the scenarios; no drift is credited."""
    values = np.asarray(pnl, dtype=float)
    if values.shape[0] < 2:
        return float("nan")
    return z_score(confidence) * float(np.std(values, ddof=1))


def parametric_var_cov(exposures: np.ndarray, cov: np.ndarray, confidence: float) -> float:
    """z_c × sqrt(wᵀ Σ w): the variance-covariance form, for exposures and a return covariance."""
    w = np.asarray(exposures, dtype=float)
    return z_score(confidence) * math.sqrt(max(0.0, float(w @ np.asarray(cov) @ w)))


def var_figures(pnl: Mapping[date, float], min_obs: int = 20) -> dict[str, float | int]:
    """Historical and parametric VaR at 95% and 99% of a scenario series (nan when short)."""
    values = np.array(list(pnl.values()), dtype=float)
    enough = values.shape[0] >= min_obs
    out: dict[str, float | int] = {"var_obs": int(values.shape[0])}
    for c in CONFIDENCES:
        tag = f"{round(c * 100)}"
        out[f"var_{tag}"] = historical_var(values, c) if enough else float("nan")
        out[f"param_var_{tag}"] = parametric_var(values, c) if enough else float("nan")
    return out


def aligned_total(series: Sequence[Mapping[date, float]]) -> dict[date, float]:
    """Sum scenario series day by day over the days every series has."""
    if not series:
        return {}
    common = set(series[0])
    for s in series[1:]:
        common &= set(s)
    return {d: float(sum(s[d] for s in series)) for d in sorted(common)}
