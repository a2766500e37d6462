"""Rules files: validated at load with errors naming the file, the rule and the key; one set
from several files; a version from the content; a diff rule by rule; the legacy [[rules]]."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra import config, rulesets
from infra.config import legacy
from infra.rulesets import RulesetError
from rules.engine.spec import RuleSet, diff

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "rules.toml"


def write(tmp: Path, name: str, text: str) -> Path:
    p = tmp / name
    p.write_text(text)
    return p


def test_the_shipped_default_rule_set_loads_with_every_kind():
    rs = rulesets.load([EXAMPLE])
    kinds = {r.kind for r in rs.rules}
    assert kinds == {
        "threshold",
        "session",
        "change",
        "behaviour",
        "fund_flow",  # added deliberately: fund-flow lines moved from code into rule files
        "volatility",
        "jump",
        "composite",
    }
    warn = rs.by_id()["account.risk_degree.warn"]
    assert (warn.metric, warn.op, warn.threshold, warn.scope) == (
        "risk_degree",
        ">",
        0.8,
        "account",
    )
    assert {p: len(rulesets.placed(rs, p)) for p in ("account", "hierarchy", "books", "market", "correlator")} == {
        "account": 12, "hierarchy": 1, "books": 2, "market": 2, "correlator": 2}  # fmt: skip
    assert rs.inhibit[0].id == "liquidation-mutes-warnings"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[[rules]]\nid = "a"\nmetric = "risk_degre"\nthreshold = 1',
            "rules[0] (a).metric: 'risk_degre' is not a metric of scope 'account' (did you mean 'risk_degree'?)",
        ),
        ('[[rules]]\nid = "a"\nkind = "treshold"', "rules[0] (a).kind: 'treshold' is not one of"),
        (
            '[[rules]]\nid = "a"\nkind = "change"\nmetric = "equity"\nwindow = 5',
            "rules[0] (a).window: unknown key for kind 'change' (did you mean 'window_s'?)",
        ),
        (
            '[[rules]]\nid = "a"\nthreshold = 0.8\nrearm = 0.9',
            "rules[0] (a).rearm: 0.9 must be at or below threshold 0.8",
        ),
        ('[[rules]]\nid = "a"\nseverity = "fatal"', "rules[0] (a).severity: must be one of"),
        (
            '[[rules]]\nid = "a"\nsessions = ["lunch"]',
            "rules[0] (a).sessions: unknown session 'lunch'",
        ),
        (
            '[[rules]]\nid = "a"\nkind = "behaviour"\nmetric = "orders"\nwindow_s = "fast"',
            "rules[0] (a).window_s: expected int/float, got 'fast'",
        ),
        (
            '[[rules]]\nid = "a"\nkind = "volatility"\nwindow_s = 7',
            "rules[0] (a).window_s: must be one of the feed's volatility windows",
        ),
        (
            '[[rules]]\nid = "a"\nkind = "composite"\nwhen = [["key=x"]]',
            "rules[0] (a).when: needs at least two conditions",
        ),
        (
            '[[rules]]\nid = "a"\nkind = "composite"\nwhen = [["key x"], ["k=y"]]',
            "rules[0] (a).when[0]: matcher 'key x': expected name=value",
        ),
        ('[[rules]]\nid = "a"\n[[rules]]\nid = "a"', "rules: rule ids must be unique"),
        ("[[rules]]\nthreshold = 1", "rules[0].id: missing"),
        ('[[inhibit]]\nid = "i"\nsource = []', "inhibit[0] (i).source: expected a non-empty list"),
        (
            "[hygiene]\ngroup_wait = 1",
            "hygiene.group_wait: unknown key (did you mean 'group_wait_s'?)",
        ),
        ("[rulez]", "rulez: unknown table (did you mean 'rules'?)"),
        ("[[rules]\nid=", "not valid TOML"),
    ],
)
def test_errors_name_the_file_the_rule_and_the_key(tmp_path, text, message):
    path = write(tmp_path, "bad.toml", text)
    with pytest.raises(RulesetError) as err:
        rulesets.load([path])
    assert str(err.value).startswith(f"{path}: ")
    assert message in str(err.value)


def test_several_files_make_one_set_with_unique_ids(tmp_path):
    a = write(
        tmp_path, "a.toml", '[hygiene]\ngroup_wait_s = 1\n[[rules]]\nid = "x"\nthreshold = 0.8'
    )
    b = write(tmp_path, "b.toml", '[hygiene]\nrepeat_s = 60\n[[rules]]\nid = "y"\nthreshold = 0.9')
    rs = rulesets.load([a, b])
    assert [r.id for r in rs.rules] == ["x", "y"]
    assert (rs.hygiene.group_wait_s, rs.hygiene.repeat_s) == (1.0, 60.0)
    c = write(tmp_path, "c.toml", '[[rules]]\nid = "x"\nthreshold = 0.7')
    with pytest.raises(RulesetError, match=f"{c}: rule 'x' is already defined in {a}"):
        rulesets.load([a, c])


def test_version_follows_content_and_diff_says_what_changed(tmp_path):
    a = write(
        tmp_path,
        "a.toml",
        '[[rules]]\nid = "x"\nthreshold = 0.8\n[[rules]]\nid = "old"\nthreshold = 2',
    )
    same = write(
        tmp_path,
        "same.toml",
        '# a comment\n[[rules]]\nid = "x"\nthreshold = 0.8\n[[rules]]\nid = "old"\nthreshold = 2',
    )
    b = write(
        tmp_path,
        "b.toml",
        '[[rules]]\nid = "x"\nthreshold = 0.85\n[[rules]]\nid = "new"\nthreshold = 2',
    )
    va, vs, vb = (rulesets.load([p]) for p in (a, same, b))
    assert va.version == vs.version != vb.version
    d = diff(va, vb)
    assert d["added"] == ["new"] and d["removed"] == ["old"]
    assert d["changed"] == {"x": {"threshold": [0.8, 0.85]}}
    assert RuleSet.from_bundle(vb.to_bundle()).version == vb.version
    record = rulesets.applied_record(vb, va, "risk.zhao")
    assert record["by"] == "risk.zhao" and record["diff"] == d
    assert (
        rulesets.last_applied([rulesets.applied_record(va, None, "s"), record]).version
        == vb.version
    )


def test_legacy_config_rules_and_rules_files(tmp_path):
    cfg = config.default()
    rs = rulesets.for_config(cfg)
    assert [r.id for r in rs.rules] == ["account.risk_degree.warn"]  # the embedded default
    # The config's other old spellings are the set's base: evaluated, kept by a reload.
    assert {r.id for r in rs.base} >= {"market.jump", "market.feed_silent",
                                       "account.fund_flow.single_transfer_above_limit"}  # fmt: skip
    assert rs.version == RuleSet(rs.rules, source=rs.source).version  # base: not versioned
    f = write(tmp_path, "r.toml", '[[rules]]\nid = "y"\nscope = "unit"\nthreshold = 0.7')
    cfg = config.from_dict({"rules_files": [str(f)]})
    assert [r.id for r in rulesets.for_config(cfg).rules] == ["y"]  # files replace the default
    cfg = config.from_dict(
        {"rules_files": [str(f)], "rules": [{"id": "z", "threshold": 0.9, "rearm": 0.8}]}
    )
    assert [r.id for r in rulesets.for_config(cfg).rules] == ["z", "y"]
    # A rules file with market rules replaces the default market rules (not added to them).
    m = write(tmp_path, "m.toml", '[[rules]]\nid = "j"\nkind = "jump"\nthreshold = 7')
    rs = rulesets.for_config(config.from_dict({"rules_files": [str(m)]}))
    market = rulesets.placed(rs, "market")
    assert [r.id for r in market] == ["j"] and market[0].op == ">"
    assert [r.id for r in rulesets.placed(rs, "transfers")] == [
        "account.fund_flow.single_transfer_above_limit", "account.fund_flow.outflow_above_baseline"
    ]  # fmt: skip


def test_rules_check_command(tmp_path, capsys):
    from app import cli

    assert cli.main(["rules", "check", str(EXAMPLE)]) == 0
    assert "version" in capsys.readouterr().out
    bad = write(tmp_path, "bad.toml", '[[rules]]\nid = "a"\nop = "=="')
    assert cli.main(["rules", "check", str(bad)]) == 2
    assert f"{bad}: rules[0] (a).op: must be one of" in capsys.readouterr().err


def _effective(rs: RuleSet) -> list[dict]:
    return sorted((r.to_dict() for r in rs.everything), key=lambda d: d["id"])


def test_migrating_the_example_config_yields_rules_that_fire_identically(tmp_path, capsys):
    import numpy as np
    import tomllib

    from app import cli
    from rules.engine.evaluator import RuleEngine
    from rules.engine.kinds.market_set import MarketRuleSet
    from rules.market_stats import SliceSignals

    example = Path(__file__).resolve().parents[2] / "examples" / "fengkong.toml"
    out = tmp_path / "migrated.toml"
    assert cli.main(["rules", "migrate", str(example), "--out", str(out)]) == 0
    assert "rules from" in capsys.readouterr().out
    old = rulesets.for_config(config.load(example))
    data = tomllib.loads(example.read_text())
    data.pop("rules", None)
    data["market"].pop("rules", None)
    data.get("books", {}).pop("limits", None)
    data.get("accounts", {}).pop("fund_flow", None)
    data["rules_files"] = [str(out)]
    new = rulesets.for_config(config.from_dict(data, source="migrated"))
    assert not legacy.deprecations(data, "migrated")  # no old spelling left
    assert _effective(new) == _effective(old) and len(_effective(old)) == 12
    # ... and they fire identically through the one engine: account and market rules.
    rng = np.random.default_rng(3)
    total = 0
    engines = [RuleEngine(rulesets.placed(rs, "account")) for rs in (old, new)]
    for step in range(50):
        rows = np.arange(20)
        values = rng.uniform(0.5, 1.2, 20)
        fired = [
            {(f.spec.id, int(r), int(e)) for f in eng.evaluate(lambda _m, _r, v=values: v, rows,
                                                               float(step))
             for r, e in zip(f.rows, f.episodes, strict=True)}
            for eng in engines
        ]  # fmt: skip
        assert fired[0] == fired[1]
        total += len(fired[0])
    markets = [MarketRuleSet(rulesets.placed(rs, "market"), (60, 300, 1800)) for rs in (old, new)]
    for m in markets:
        m.add_rows(["rb2601", "cu2601"], ["rb", "cu"])
    for _ in range(50):
        z = rng.uniform(0, 9, 2)
        sig = SliceSignals(
            rows=np.arange(2), second=0, ts=np.zeros(2), last=np.full(2, 100.0), jump_z=z,
            jump_move=np.zeros(2), near_limit=rng.uniform(0, 0.03, 2),
            limit_side=np.zeros(2, np.int8), locked=rng.random(2) < 0.2,
            volume_ratio=rng.uniform(0, 10, 2), oi_ratio=rng.uniform(0, 10, 2),
            rv={w: rng.uniform(0, 2, 2) for w in (60, 300, 1800)},
        )  # fmt: skip
        bits = np.full(2, -1, dtype=np.int64)
        got = [
            {(f.rule.id, tuple(f.rows.tolist())) for f in m.on_slice(sig, bits)} for m in markets
        ]
        assert got[0] == got[1]
        total += len(got[0])
    assert total > 50  # the comparison saw rules fire (and re-arm) many times


def test_old_spellings_load_with_one_deprecation_line_each(caplog, tmp_path):
    data = {
        "rules": [{"id": "x", "threshold": 0.9, "rearm": 0.8}],
        "market": {"rules": [{"id": "j", "kind": "jump"}]},
        "books": {"limits": [{"id": "l", "threshold": 10}]},
        "accounts": {"fund_flow": {"k": 3.0}},
    }
    with caplog.at_level("WARNING", logger="fengkong.config"):
        cfg = config.from_dict(data, source="old.toml")
    lines = [r.getMessage() for r in caplog.records if r.name == "fengkong.config"]
    assert len(lines) == 4 and all("\n" not in line for line in lines)
    assert lines[1].startswith("old.toml: [[market.rules]] in the config is deprecated: write")
    assert "fengkong rules migrate old.toml" in lines[3] and 'kind "fund_flow"' in lines[3]
    rs = rulesets.for_config(cfg)
    assert [r.id for r in rs.rules] == ["x"]
    assert [r.id for r in rs.base] == [
        "j", "l", "account.fund_flow.single_transfer_above_limit",
        "account.fund_flow.outflow_above_baseline",
    ]  # fmt: skip
    outflow = rs.base[-1]
    assert (outflow.threshold, outflow.params["days"]) == (3.0, 20)
    f = write(tmp_path, "old.toml", '[market]\nflush_ms = 20\n\n[[market.rules]]\nid = "j"\n')
    caplog.clear()
    with caplog.at_level("WARNING", logger="fengkong.config"):
        config.load(f)
        config.load(f, deprecations=False)
    [line] = [r.getMessage() for r in caplog.records if r.name == "fengkong.config"]
    assert line.startswith(f"{f}:4: [[market.rules]] in the config is deprecated")  # file:line
