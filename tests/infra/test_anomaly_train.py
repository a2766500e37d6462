"""`fengkong anomaly train` on an activity history: a model file that the anomaly kind loads."""

from __future__ import annotations

import csv
import json

import numpy as np

from app.cli import main
from infra.anomaly_models import HISTORY_COLUMNS, load_model
from rules.anomaly import feature_matrix


def _history(path, accounts: int = 80, windows: int = 40, seed: int = 7) -> None:
    rng = np.random.default_rng(seed)
    rate = rng.uniform(2, 30, accounts)
    equity = rng.uniform(1e5, 1e7, accounts)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["window", *HISTORY_COLUMNS])
        for k in range(windows):
            orders = rng.poisson(rate)
            cancels = rng.binomial(orders, 0.3)
            trades = rng.binomial(orders - cancels, 0.5)
            for a in range(accounts):
                turnover = trades[a] * 0.01 * equity[a]
                w.writerow([k, f"A{a:03d}", orders[a], cancels[a], trades[a], 0, turnover, 0.0,
                            equity[a]])  # fmt: skip


def test_train_writes_a_versioned_model_that_flags_a_spoofing_window(tmp_path, capsys):
    history, out = tmp_path / "activity.csv", tmp_path / "behaviour.json"
    _history(history)
    assert main(["anomaly", "train", "--history", str(history), "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["windows"] == 80 * 40 and summary["accounts"] == 80
    model = load_model(out, summary["version"])  # the pin a rule would carry
    own = {"orders": np.array([10.0, 10.0]), "cancels": np.array([3.0, 3.0]),
           "turnover": np.array([5e4, 5e4])}  # fmt: skip
    window = {"orders": np.array([10.0, 220.0]), "cancels": np.array([3.0, 209.0]),
              "trades": np.array([3.0, 1.0]), "self_trades": np.zeros(2),
              "turnover": np.array([5e4, 1e4]), "withdraw": np.zeros(2),
              "equity": np.array([1e6, 1e6])}  # fmt: skip
    scores = model.score(feature_matrix(window, own))
    assert scores[0] < model.threshold < scores[1]  # ordinary below, spoofing above


def test_a_bad_history_row_is_one_line_naming_file_and_line(tmp_path, capsys):
    history = tmp_path / "activity.csv"
    _history(history, accounts=5, windows=12)
    lines = history.read_text().splitlines()
    lines[7] = lines[7].replace(",0,", ",lots,", 1)
    history.write_text("\n".join(lines) + "\n")
    code = main(["anomaly", "train", "--history", str(history), "--out", str(tmp_path / "m.json")])
    err = capsys.readouterr().err
    assert code == 2 and f"{history}:8: not a number" in err and "Traceback" not in err
    assert not (tmp_path / "m.json").exists()
