"""What an adaptive rule judged a key against: the evidence an alert carries.

A fixed rule's alert says "value crossed threshold". An adaptive rule's threshold is learned per
key, so its alert must also say against what: the `score` (how unusual, in units of the key's
own spread), the `baseline` it was judged against (a volatility, a usual amount, a usual rate),
the `threshold` the score crossed (the rule's k), what the baseline is (`baseline_of`), its
unit (`unit`: "σ" or "z") and how the baseline is printed (`fmt`: "pct" or "money" or "rate").
`text` puts them in one sentence for people: "3.4σ against its own rolling 5-min volatility
1.2% (move 4.1%)".

The evidence travels as `attributes["evidence"]` of the RiskEvent and the Alert, as the typed
`evidence` field of the journal's alert and risk-event records (rules.journal_records, v2), as
`evidence` in the backtest's alerts.jsonl, and in the notification's title and text.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

KEYS = ("score", "baseline", "threshold", "move", "history", "baseline_of", "unit", "fmt")


def evidence_of(attributes: Mapping[str, Any], j: int) -> dict[str, Any]:
    """Row `j`'s plain evidence from per-row arrays (or scalars shared by all rows); the
    `text` is added here, so every path (feed, shard, backtest) writes the same sentence."""
    out: dict[str, Any] = {}
    for name, value in attributes.items():
        v = value[j] if isinstance(value, np.ndarray) else value
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, float) and not math.isfinite(v):
            v = None  # JSON has no NaN: an absent figure is null
        out[name] = v
    if not out.get("text"):  # a kind may word its own sentence
        out["text"] = evidence_text(out)
    return out


def _figure(value: Any, fmt: str) -> str:
    if value is None:
        return "n/a"
    x = float(value)
    if fmt == "pct":
        return f"{x:.2%}"
    if fmt == "money":
        return f"{x:,.0f}"
    return f"{x:.3g}"


def evidence_text(ev: Mapping[str, Any]) -> str:
    """ "3.4σ against its own <baseline_of> <baseline> (move …; threshold kσ)"."""
    unit = str(ev.get("unit") or "σ")
    fmt = str(ev.get("fmt") or "")
    score = ev.get("score")
    head = f"{float(score):.1f}{unit}" if score is not None else "n/a"
    text = f"{head} against its own {ev.get('baseline_of', 'baseline')} "
    text += _figure(ev.get("baseline"), fmt)
    extra = []
    if ev.get("move") is not None:
        extra.append(f"{'move' if fmt == 'pct' else 'now'} {_figure(ev['move'], fmt)}")
    if ev.get("threshold") is not None:
        extra.append(f"threshold {float(ev['threshold']):g}{unit}")
    return text + (f" ({'; '.join(extra)})" if extra else "")
