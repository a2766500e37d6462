"""Anomaly model files: a fitted rules.anomaly.AnomalyModel as JSON, versioned by content.

    {"kind": "fengkong.anomaly_model", "version": "1a2b3c4d5e6f", "model": {...to_record()}}

A rule of kind `anomaly` names its model file (`model = "models/behaviour.json"`, relative to
the rules file) and may pin its version (`model_version = "1a2b3c4d5e6f"`): the loader reads
the file once, checks it (the features, the version written in it against the content's, the
pin), and puts the model's record into the rule itself — so the rule set's version changes
with the model, the journal holds the exact model each rule set scored with, and actors on
other nodes never read the file (it travels in the rules bundle).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from rules.anomaly import AnomalyModel

FILE_KIND = "fengkong.anomaly_model"


def save_model(model: AnomalyModel, path: str | Path) -> str:
    """Write `model` to `path`; returns its version."""
    body = {"kind": FILE_KIND, "version": model.version, "model": model.to_record()}
    Path(path).write_text(json.dumps(body, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return model.version


def load_model(path: str | Path, version: str | None = None) -> AnomalyModel:
    """The model of a model file; ValueError naming the file and why."""
    p = Path(path)
    try:
        body = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{p}: no such model file") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{p}: not a model file ({exc})") from None
    if not isinstance(body, dict) or body.get("kind") != FILE_KIND:
        raise ValueError(f"{p}: not a model file (kind is not {FILE_KIND!r})")
    try:
        model = AnomalyModel.from_record(body["model"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{p}: bad model ({exc})") from None
    if body.get("version") != model.version:
        raise ValueError(
            f"{p}: written as version {body.get('version')!r} but its content is {model.version!r}"
        )
    if version and version != model.version:
        raise ValueError(f"{p}: version {model.version!r}, the rule pins {version!r}")
    return model


def embed(params: dict[str, Any], rules_file: str) -> dict[str, Any]:
    """An anomaly rule's params with its model's record in them (`model_record`)."""
    path = Path(str(params["model"]))
    if not path.is_absolute():
        path = Path(rules_file).resolve().parent / path
    model = load_model(path, params.get("model_version") or None)
    return {**params, "model_record": model.to_record(), "model_version": model.version}


HISTORY_COLUMNS = ("account_id", "orders", "cancels", "trades", "self_trades", "turnover",
                   "withdraw", "equity")  # fmt: skip


def read_history(path: str | Path) -> tuple[list[str], dict[str, np.ndarray]]:
    """An activity history CSV (one row per account and window; HISTORY_COLUMNS, other columns
    such as `window` ignored) as account ids and float columns; ValueError naming file:line."""
    p = Path(path)
    try:
        handle = p.open(encoding="utf-8", newline="")
    except OSError as exc:
        raise ValueError(f"{p}: cannot read ({exc.strerror})") from None
    with handle:
        reader = csv.DictReader(handle)
        missing = [c for c in HISTORY_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{p}:1: missing columns {', '.join(missing)}")
        ids: list[str] = []
        values: list[list[float]] = []
        for row in reader:
            line = reader.line_num
            try:
                figures = [float(row[c]) for c in HISTORY_COLUMNS[1:]]
            except (TypeError, ValueError):
                raise ValueError(f"{p}:{line}: not a number in {dict(row)}") from None
            if not all(math.isfinite(v) and v >= 0 for v in figures):
                raise ValueError(f"{p}:{line}: figures must be finite and ≥ 0, got {figures}")
            if not row["account_id"]:
                raise ValueError(f"{p}:{line}: empty account_id")
            ids.append(row["account_id"])
            values.append(figures)
    cols = np.array(values, dtype=float).reshape(-1, len(HISTORY_COLUMNS) - 1)
    return ids, {name: cols[:, i] for i, name in enumerate(HISTORY_COLUMNS[1:])}
