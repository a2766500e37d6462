"""`fengkong anomaly train`: fit the behaviour-anomaly model on a history of account activity.

The history is one CSV row per account and window (orders, cancels, trades, self_trades,
turnover, withdraw, equity; e.g. five-minute windows exported from the back office or built from
the journal's order and trade records). Each account's own baseline is its mean over the history,
as the live shard's is its running mean (rules.adaptive.RateBaseline): the `*_vs_own` features
compare a window with the account itself. The model file is versioned by its content
(infra.anomaly_models); a rule of kind `anomaly` names it and may pin that version.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np

from infra.anomaly_models import read_history, save_model
from rules.anomaly import FEATURES, feature_matrix, fit


def add_parser(sub: Any) -> None:
    p = sub.add_parser("anomaly", help="the behaviour-anomaly model (train on history)")
    p.add_argument("what", choices=("train",))
    p.add_argument("--history", required=True, help="activity CSV: one row per account-window")
    p.add_argument("--out", required=True, help="model file to write (JSON)")
    p.add_argument("--alarm-rate", type=float, default=0.001,
                   help="share of ordinary windows above the threshold (default 0.1%%)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="the summary as JSON")
    p.set_defaults(func=cmd_train)


def own_means(ids: list[str], cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per row, its account's mean orders, cancels and turnover over the whole history."""
    names, index = np.unique(np.asarray(ids), return_inverse=True)
    count = np.bincount(index, minlength=len(names))
    return {k: (np.bincount(index, weights=cols[k], minlength=len(names)) / count)[index]
            for k in ("orders", "cancels", "turnover")}  # fmt: skip


def cmd_train(args: argparse.Namespace) -> int:
    ids, cols = read_history(args.history)
    x = feature_matrix(cols, own_means(ids, cols))
    try:
        model = fit(x, alarm_rate=args.alarm_rate)
    except ValueError as exc:
        raise ValueError(f"{args.history}: {exc}") from None
    version = save_model(model, args.out)
    summary = {"model": args.out, "version": version, "windows": len(ids),
               "accounts": len(set(ids)), "alarm_rate": model.alarm_rate,
               "threshold": round(model.threshold, 4), "features": list(FEATURES)}  # fmt: skip
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"trained on {summary['windows']:,} windows of {summary['accounts']:,} accounts; "
              f"threshold {summary['threshold']} at alarm rate {model.alarm_rate:.2%}")  # fmt: skip
        print(f"wrote {args.out} version {version} (pin it in the rule: model_version)")
    return 0
