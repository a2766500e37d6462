"""How good is a rule set? Judged on history against the events that matter: crossings of 100%.

A rule set that alerts on every account every hour is useless, one that stays quiet until the
account is past its line is late. On a backtest, with the alerts it raised and the moments each
account's risk degree crossed 100% (the liquidation line), this says per rule set:

- alerts per account per day (the noise a desk lives with);
- for each crossing, the lead time: how long before it the first alert on that account came
  (within a look-back window; an alert after the crossing is not early warning);
- missed crossings: crossings with no alert on the account in the window before them;
- precision: alerted accounts that went on to cross within the window, over alerted accounts.

Pure (numpy, stdlib), so `fengkong backtest --evaluate` and a notebook compute the same figures.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True, slots=True)
class Crossing:
    key: str  # account id
    ts: float  # when risk degree reached 100% (or equity ≤ 0)


@dataclass(slots=True)
class Evaluation:
    name: str
    alerts: int
    accounts: int
    days: float
    crossings: int
    caught: int
    missed: list[Crossing]
    lead_s: np.ndarray  # lead time per caught crossing
    precision: float

    @property
    def alerts_per_account_day(self) -> float:
        return self.alerts / max(self.accounts * self.days, 1e-9)

    @property
    def recall(self) -> float:
        return self.caught / self.crossings if self.crossings else float("nan")

    def summary(self) -> dict[str, Any]:
        lead = self.lead_s
        return {
            "rule_set": self.name,
            "alerts": self.alerts,
            "alerts_per_account_day": round(self.alerts_per_account_day, 6),
            "crossings": self.crossings,
            "caught": self.caught,
            "missed": len(self.missed),
            "recall": None if not self.crossings else round(self.recall, 4),
            "precision": None if np.isnan(self.precision) else round(self.precision, 4),
            "lead_s_median": float(np.median(lead)) if lead.size else None,
            "lead_s_p10": float(np.percentile(lead, 10)) if lead.size else None,
        }


def evaluate_rule_set(
    name: str,
    alerts: Iterable[Mapping[str, Any]],
    crossings: Sequence[Crossing],
    accounts: int,
    days: float,
    window_s: float = 4 * 3600.0,
    rules: set[str] | None = None,
) -> Evaluation:
    """`alerts`: records with `ts`, `key` (and `rule`); only `rules` if given; keys are accounts."""
    by_key: dict[str, list[float]] = defaultdict(list)
    n_alerts = 0
    for a in alerts:
        if rules is not None and a.get("rule") not in rules:
            continue
        n_alerts += 1
        by_key[str(a["key"])].append(float(a["ts"]))
    times = {k: np.sort(np.asarray(v)) for k, v in by_key.items()}
    leads, missed = [], []
    crossed_after: dict[str, list[float]] = defaultdict(list)
    for c in crossings:
        crossed_after[c.key].append(c.ts)
        t = times.get(c.key)
        if t is None:
            missed.append(c)
            continue
        # The first alert inside the window before the crossing (at or before it).
        lo, hi = np.searchsorted(t, c.ts - window_s), np.searchsorted(t, c.ts, side="right")
        if hi > lo:
            leads.append(c.ts - t[lo])
        else:
            missed.append(c)
    alerted = list(times)
    useful = 0
    for key in alerted:
        cross = np.asarray(crossed_after.get(key, ()))
        t = times[key]
        if cross.size and np.any((cross[:, None] >= t[None, :])
                                 & (cross[:, None] - t[None, :] <= window_s)):  # fmt: skip
            useful += 1
    precision = useful / len(alerted) if alerted else float("nan")
    return Evaluation(name, n_alerts, accounts, days, len(crossings), len(leads), missed,
                      np.asarray(leads, dtype=float), precision)  # fmt: skip


def crossings_from_series(
    keys: Sequence[str], ts: np.ndarray, risk_degree: np.ndarray, line: float = 1.0,
    rearm: float = 0.95,
) -> list[Crossing]:  # fmt: skip
    """Crossings of `line` in a (steps × accounts) risk-degree series, one per episode (an
    account must fall back below `rearm` before it can cross again)."""
    rd = np.asarray(risk_degree, dtype=float)
    out: list[Crossing] = []
    for j, key in enumerate(keys):
        armed = True
        for i in range(rd.shape[0]):
            v = rd[i, j]
            if armed and v >= line:
                out.append(Crossing(key, float(ts[i])))
                armed = False
            elif not armed and v < rearm:
                armed = True
    return out


def compare(evaluations: Sequence[Evaluation]) -> list[dict[str, Any]]:
    """Side by side summaries (one row per rule set)."""
    return [e.summary() for e in evaluations]
