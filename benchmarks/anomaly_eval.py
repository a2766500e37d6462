"""Anomaly model evaluation: injected anomalies in account behaviour driven by real market activity.

Normal behaviour: 5,000 accounts over two trading days in 5-minute windows; each account has its
own order rate, cancel propensity, fill rate and size (log-normal / beta across accounts), and
its activity follows the real intraday activity of its contract (traded volume per window from
../shared/data/ticks/cn_20171113_selected; a synthetic U-shape without it, said in the output).
Day one trains, day two is scored with 0.5% of account-windows replaced by one of four injected
anomalies: spoofing (10× orders, 95% cancelled, few fills), wash trading (self-trades), a drain
(withdrawing half the equity) and churning (20× turnover). Reported per estimator: precision,
recall per anomaly kind and false alarms per 1,000 accounts per day, at the same alarm rate.
"""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path

import numpy as np

from rules.anomaly import FEATURES, detection_figures, feature_matrix, fit

NAME = "anomaly-eval"
DESCRIPTION = "account-behaviour anomaly model on injected anomalies (robust Mahalanobis vs IF)"
TICKS = Path(__file__).resolve().parents[1].parent / "shared/data/ticks/cn_20171113_selected"
WINDOW_MIN = 5
KINDS = ("spoof", "wash", "drain", "churn")


def activity_profile() -> tuple[np.ndarray, str]:
    """Traded volume per 5-minute window of the day, per contract file, normalised to mean 1."""
    profiles = []
    for path in sorted(TICKS.glob("*.csv")) if TICKS.exists() else []:
        with path.open() as f:
            rows = list(csv.DictReader(f))
        minutes = np.array(
            [int(r["UpdateTime"][:2]) * 60 + int(r["UpdateTime"][3:5]) for r in rows]
        )
        volume = np.array([float(r["Volume"]) for r in rows])
        traded = np.diff(volume, prepend=volume[0]).clip(min=0)
        bins = np.bincount(minutes // WINDOW_MIN, weights=traded, minlength=24 * 60 // WINDOW_MIN)
        bins = bins[bins > 0]  # trading windows only
        if bins.size > 10:
            profiles.append(bins / bins.mean())
    if not profiles:
        t = np.linspace(-1, 1, 45)
        return [1.0 + 1.5 * t**2], "synthetic U-shape (no ../shared/data ticks)"
    return profiles, f"real traded volume of {len(profiles)} contracts, 2017-11-13"


def population(rng: np.random.Generator, accounts: int, profiles: list[np.ndarray]) -> dict:
    return {
        "rate": rng.lognormal(0.5, 1.0, accounts),  # orders per window at mean activity
        "cancel": rng.beta(2, 5, accounts),
        "fill": rng.beta(5, 3, accounts),
        "size": rng.lognormal(-3.5, 0.8, accounts),  # turnover per order / equity
        "profile": rng.integers(0, len(profiles), accounts),
        "equity": rng.lognormal(14, 1.2, accounts),
    }


def windows(rng: np.random.Generator, pop: dict, profiles: list[np.ndarray], own: dict | None,
            inject: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:  # fmt: skip
    """Feature rows of one day, the injected truth and kinds, and the day's per-account means
    (the next day's own baseline); with `own=None` the day is its own baseline (training)."""
    n = pop["rate"].size
    raw, truth, kinds = [], [], []
    length = min(p.size for p in profiles)
    for w in range(length):
        act = np.array([profiles[k][w] for k in pop["profile"]])
        orders = rng.poisson(pop["rate"] * act)
        cancels = rng.binomial(orders, pop["cancel"])
        trades = rng.binomial(orders - cancels, pop["fill"])
        turnover = trades * pop["size"] * rng.lognormal(0, 0.5, n) * pop["equity"]
        withdraw = np.where(rng.random(n) < 0.002, pop["equity"] * rng.uniform(0.01, 0.1, n), 0.0)
        self_trades = np.zeros(n)
        kind = np.full(n, -1)
        if inject:
            hit = rng.random(n) < inject
            kind[hit] = rng.integers(0, len(KINDS), hit.sum())
            spoof = kind == 0
            orders = np.where(spoof, orders * 10 + 20, orders)
            cancels = np.where(spoof, (orders * 0.95).astype(int), cancels)
            trades = np.where(spoof, np.minimum(trades, 1), trades)
            self_trades = np.where(kind == 1, rng.integers(3, 20, n), self_trades)
            withdraw = np.where(kind == 2, pop["equity"] * rng.uniform(0.3, 0.9, n), withdraw)
            turnover = np.where(kind == 3, turnover * 20 + pop["equity"] * 0.5, turnover)
        raw.append({"orders": orders, "cancels": cancels, "trades": trades,
                    "self_trades": self_trades, "turnover": turnover, "withdraw": withdraw,
                    "equity": pop["equity"]})  # fmt: skip
        truth.append(kind >= 0)
        kinds.append(kind)
    means = {k: np.mean([w[k] for w in raw], axis=0) for k in ("orders", "cancels", "turnover")}
    base = own or means
    rows = np.vstack([feature_matrix(w, base) for w in raw])
    return rows, np.concatenate(truth), np.concatenate(kinds), means


def run(quick: bool = False) -> dict:
    rng = np.random.default_rng(20171113)
    accounts = 1000 if quick else 5000
    profiles, source = activity_profile()
    pop = population(rng, accounts, profiles)
    train, _, _, own = windows(rng, pop, profiles, own=None)
    test, truth, kinds, _ = windows(rng, pop, profiles, own=own, inject=0.005)
    alarm_rate = 0.001
    out: dict = {"activity": source, "accounts": accounts, "windows_per_day": train.shape[0] // accounts,
                 "injected": int(truth.sum()), "alarm_rate": alarm_rate,
                 "load_avg_1m": round(os.getloadavg()[0], 2)}  # fmt: skip
    t0 = time.perf_counter()
    model = fit(train, alarm_rate=alarm_rate)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    flagged = model.score(test) > model.threshold
    score_ms = 1000 * (time.perf_counter() - t0)
    out["robust"] = _figures(flagged, truth, kinds, accounts)
    out["robust"].update(fit_s=round(fit_s, 3), score_ms_per_100k=round(score_ms * 1e5 / test.shape[0], 2),
                         version=model.version)  # fmt: skip
    try:
        from sklearn.ensemble import IsolationForest
    except ImportError:
        out["isolation_forest"] = "scikit-learn not installed (pip install scikit-learn to compare)"
        return out
    t0 = time.perf_counter()
    forest = IsolationForest(n_estimators=200, contamination=alarm_rate, random_state=0).fit(train)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    flagged = forest.predict(test) < 0
    score_ms = 1000 * (time.perf_counter() - t0)
    out["isolation_forest"] = _figures(flagged, truth, kinds, accounts)
    out["isolation_forest"].update(fit_s=round(fit_s, 3),
                                   score_ms_per_100k=round(score_ms * 1e5 / test.shape[0], 2))  # fmt: skip
    return out


def _figures(flagged: np.ndarray, truth: np.ndarray, kinds: np.ndarray, accounts: int) -> dict:
    d = detection_figures(flagged, truth, accounts, days=1.0)
    per_kind = {k: round(float(flagged[kinds == i].mean()), 3) for i, k in enumerate(KINDS)}
    return {"precision": round(d.precision, 3), "recall": round(d.recall, 3),
            "false_alarms_per_1000_accounts_day": round(d.false_alarms_per_1000_day, 2),
            "recall_by_kind": per_kind, "features": list(FEATURES)}  # fmt: skip
