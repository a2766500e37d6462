"""The anomaly model scored live (issue 18 item 5 in the engine): a small model trained on
ordinary windows, saved as a versioned file, named by a rule (`kind = "anomaly"`), embedded
in the rule at load, scored on every account of a shard once per window in one batch; the
injected spoofing account fires in its window and nobody before it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from infra import rulesets
from infra.anomaly_models import load_model, save_model
from rules.anomaly import feature_matrix, fit
from rules.engine.evaluator import RuleEngine

N = 200  # accounts
W = 60.0  # window seconds
T0 = 1_763_000_000.0


def ordinary(rng: np.random.Generator, rate: np.ndarray) -> dict[str, np.ndarray]:
    orders = rng.poisson(rate).astype(float)
    cancels = rng.binomial(orders.astype(int), 0.3).astype(float)
    trades = np.floor((orders - cancels) * 0.5)
    return {"orders": orders, "cancels": cancels, "trades": trades,
            "self_trades": np.zeros(N), "turnover": trades * 40_000.0,
            "withdraw": np.zeros(N), "equity": np.full(N, 1e6)}  # fmt: skip


@pytest.fixture
def model_file(tmp_path):
    rng = np.random.default_rng(8)
    rate = np.linspace(1, 15, N)
    raw = [ordinary(rng, rate) for _ in range(30)]
    own = {k: np.mean([w[k] for w in raw], axis=0) for k in ("orders", "cancels", "turnover")}
    model = fit(np.vstack([feature_matrix(w, own) for w in raw]), alarm_rate=0.002)
    path = tmp_path / "behaviour.json"
    return path, save_model(model, path)


def rules_file(tmp_path, model: str, pin: str = "") -> object:
    path = tmp_path / "anomaly.toml"
    path.write_text(f'[[rules]]\nid = "account.behaviour"\nkind = "anomaly"\nmodel = "{model}"\n'
                    + (f'model_version = "{pin}"\n' if pin else "")
                    + f"threshold = 1.5\nwindow_s = {W}\nhalflife_windows = 10\n")  # fmt: skip
    return path


def test_the_model_file_is_versioned_embedded_and_pinned(tmp_path, model_file):
    path, version = model_file
    assert load_model(path).version == version
    rs = rulesets.load([rules_file(tmp_path, path.name, version)])  # relative to the rules file
    [spec] = rs.rules
    assert spec.param("model_version") == version and spec.param("model_record")["threshold"] > 0
    with pytest.raises(rulesets.RulesetError, match=r"\(account.behaviour\).model: .*pins"):
        rulesets.load([rules_file(tmp_path, path.name, "000000000000")])
    body = json.loads(path.read_text())
    body["model"]["threshold"] *= 2  # edited by hand: the content no longer is its version
    (tmp_path / "edited.json").write_text(json.dumps(body))
    with pytest.raises(rulesets.RulesetError, match="written as version"):
        rulesets.load([rules_file(tmp_path, "edited.json")])
    with pytest.raises(rulesets.RulesetError, match="no such model file"):
        rulesets.load([rules_file(tmp_path, "missing.json")])


def test_every_account_is_scored_per_window_and_the_spoofer_fires_in_its_window(
    tmp_path, model_file
):
    path, version = model_file
    [spec] = rulesets.load([rules_file(tmp_path, path.name)]).rules
    engine = RuleEngine([spec])
    engine.resize(N)
    rng = np.random.default_rng(9)
    rate = np.linspace(1, 15, N)
    everyone = np.arange(N)
    equity = lambda metric, rows: np.full(rows.size, 1e6)  # noqa: E731 - the book's column
    fired_at: list[tuple[int, list[int]]] = []
    for window in range(12):
        w = ordinary(rng, rate)
        if window == 9:  # account 7 starts spoofing: many orders, nearly all cancelled
            w["orders"][7], w["cancels"][7], w["trades"][7] = 120.0, 118.0, 1.0
        start = T0 + window * W
        for kind, name in (("order", "orders"), ("cancel", "cancels"), ("trade", "trades")):
            rows = np.repeat(everyone, w[name].astype(int))
            engine.on_activity(kind, rows, start + 1)
        engine.on_amount("turnover", everyone, w["turnover"], start + 1)
        for f in engine.evaluate(equity, everyone[:10], start + W + 0.5, universe=lambda: everyone):
            fired_at.append((window, f.rows.tolist()))
            ev = f.evidence(0)
    group = engine.groups[0]
    assert group.scored == 12  # once per window, every account in one batch
    assert fired_at == [(9, [7])]
    assert ev["model_version"] == version and ev["score"] > ev["threshold"] > ev["baseline"]
    assert ev["feature"] in ("cancels", "cancel_ratio", "orders", "orders_vs_own",
                             "cancel_ratio_vs_own", "trades")  # fmt: skip
    assert f"model {version}" in ev["text"]


def test_own_baselines_come_back_by_account_id(tmp_path, model_file):
    path, _ = model_file
    [spec] = rulesets.load([rules_file(tmp_path, path.name)]).rules
    engine = RuleEngine([spec])
    engine.resize(3)
    everyone = np.arange(3)
    equity = lambda metric, rows: np.full(rows.size, 1e6)  # noqa: E731
    for window in range(3):
        engine.on_activity("order", np.repeat(everyone, [2, 5, 9]), T0 + window * W + 1)
        engine.evaluate(equity, everyone, T0 + (window + 1) * W + 0.5, universe=lambda: everyone)
    snapshot = json.loads(json.dumps(engine.adaptive_state(["A", "B", "C"])))
    again = RuleEngine([spec])
    assert again.restore_adaptive(snapshot, {"C": 0}) == ["account.behaviour"]
    again.adopt({"A": 1, "B": 2})
    g = again.groups[0]
    assert g.own["orders"][:3] == pytest.approx([9.0, 2.0, 5.0]) and g.seen[:3].all()
