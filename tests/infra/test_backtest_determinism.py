"""`fengkong backtest` gives byte-identical alerts.jsonl with and without its cache, on a
generated multi-contract tick set with composite rules (the cache once returned numpy.str_
instrument names, which entered the composite alert ids)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from app import backtest
from infra.specs import load_contract_table

CONTRACTS = {"rb2601": 3000.0, "cu2601": 80000.0, "i2601": 800.0}
RULES = """
[[rules]]
id = "account.risk_degree.warn"
threshold = 0.8
rearm = 0.75

[[rules]]
id = "market.jump.strong"
kind = "jump"
threshold = 6.0
rearm = 3.0

[[rules]]
id = "composite.risk_and_market"
kind = "composite"
join = "holds"
within_s = 120
severity = "critical"
when = [["dimension=account"], ["dimension=market"]]
"""


def write_inputs(tmp: Path) -> tuple[list[Path], Path, Path, Path]:
    rng = np.random.default_rng(11)
    table = load_contract_table()
    files = []
    n = 2 * 40 * 60  # 40 minutes of half-second ticks from 09:00
    t = np.arange(n) * 0.5
    for k, (name, base) in enumerate(CONTRACTS.items()):
        tick = table.spec(name).tick_size
        walk = np.cumsum(rng.normal(0, 0.0004, n))
        walk[n // 2 + 40 * k :] -= 0.04  # a plunge, a few seconds apart per contract
        last = np.round(base * np.exp(walk) / tick) * tick
        lines = [
            "UpdateTime,BidPrice1,BidVolume1,AskPrice1,AskVolume1,LastPrice,Volume,OpenInterest"
        ]
        for i in range(n):
            sec = 9 * 3600 + t[i]
            hh, mm, ss = int(sec // 3600), int(sec % 3600 // 60), sec % 60
            p = f"{last[i]:.4f}"
            lines.append(f"{hh:02d}:{mm:02d}:{ss:06.3f},{p},1,{p},1,{p},{i},1000")
        path = tmp / f"{name}_20260105.csv"
        path.write_text("\n".join(lines) + "\n")
        files.append(path)
    accounts = tmp / "accounts.csv"
    positions = tmp / "positions.csv"
    acc, pos = (
        ["account_id,group_path,pre_balance"],
        ["account_id,contract,direction,volume,cost_price"],
    )
    for i in range(30):
        margin = 0.0
        for name, base in CONTRACTS.items():
            spec = table.spec(name)
            lots = int(rng.integers(1, 6))
            pos.append(f"A{i:03d},{name},long,{lots},{base}")
            margin += base * lots * spec.multiplier * spec.margin_rate
        acc.append(f"A{i:03d},g/s/u,{margin / rng.uniform(0.6, 0.79):.2f}")
    accounts.write_text("\n".join(acc) + "\n")
    positions.write_text("\n".join(pos) + "\n")
    rules = tmp / "rules.toml"
    rules.write_text(RULES)
    return files, accounts, positions, rules


def test_alerts_identical_with_and_without_cache(tmp_path):
    files, accounts, positions, rules = write_inputs(tmp_path)
    cache = tmp_path / "cache"
    outs, summaries = {}, {}
    for run, use in (("fresh", None), ("cold", cache), ("warm", cache)):
        summaries[run] = backtest.run(files, accounts, positions, [rules], tmp_path / run,
                                      cache=str(use) if use else None, parallel=False)  # fmt: skip
        outs[run] = (tmp_path / run / "alerts.jsonl").read_bytes()
    assert summaries["warm"]["inputs"].get("rows_cached") == 3 * 4800
    assert "rows_cached" not in summaries["fresh"]["inputs"]
    assert outs["fresh"] == outs["cold"] == outs["warm"]
    lines = [json.loads(x) for x in outs["fresh"].splitlines()]
    composite = [a for a in lines if a["rule"] == "composite.risk_and_market"]
    assert composite, "the composite rule must fire for the determinism check to mean anything"
    instruments = {c[1] for a in composite for c in a["components"]}
    assert instruments & set(CONTRACTS)


def test_cached_instrument_names_are_plain_str(tmp_path):
    files, *_ = write_inputs(tmp_path)
    for _ in range(2):  # cold, then warm
        ticks, _info = backtest.load_ticks(files, cache=tmp_path / "c")
        assert all(type(n) is str for n in ticks.instruments)
