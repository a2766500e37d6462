"""Property-based fuzzing of what comes from outside: bus records, rule files and the config
(issue 13, item 9). Each must answer a record or a one-line reason, a RulesetError or a
ConfigError naming where — never a traceback of another type, whatever the input.
"""

from __future__ import annotations

import dataclasses

import tomllib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateways.accounts.wire import RECORD_TYPES, record_problem
from infra import config, rulesets
from infra.config.errors import ConfigError
from infra.config.loader import Config
from infra.rulesets import COMMON, RulesetError

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

leaf = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(),
                 st.text(max_size=12))  # fmt: skip
values = st.recursive(leaf, lambda kids: st.one_of(st.lists(kids, max_size=4),
                      st.dictionaries(st.text(max_size=8), kids, max_size=4)), max_leaves=20)  # fmt: skip

toml_leaf = st.one_of(st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(),
                      st.text(max_size=12))  # fmt: skip
toml_values = st.recursive(toml_leaf, lambda kids: st.one_of(st.lists(kids, max_size=4),
                           st.dictionaries(st.text(max_size=8), kids, max_size=4)), max_leaves=20)  # fmt: skip

RECORD_FIELDS = ("type", "account_id", "ts", "instrument", "direction", "volume", "price",
                 "amount", "balance", "positions", "prices", "offset", "order_id", "trade_id")  # fmt: skip
record_keys = st.one_of(st.sampled_from(RECORD_FIELDS), st.text(max_size=8))
records = st.dictionaries(record_keys, values, max_size=8) | st.fixed_dictionaries(
    {"type": st.sampled_from(sorted(RECORD_TYPES)), "account_id": st.text(max_size=6)},
    optional={k: values for k in RECORD_FIELDS[2:]},
)


@FUZZ
@given(st.one_of(records, values))
def test_any_bus_record_is_valid_or_has_a_one_line_reason(record) -> None:
    problem = record_problem(record)
    assert problem is None or (isinstance(problem, str) and problem and "\n" not in problem)


rule_tables = st.fixed_dictionaries(
    {},
    optional={k: toml_values for k in COMMON}
    | {
        "kind": st.sampled_from(["threshold", "composite", "market.jump", "nope"]) | toml_values,
        "id": st.text(max_size=6) | toml_values,
    },  # fmt: skip
)
rule_files = st.fixed_dictionaries(
    {},
    optional={"rules": st.lists(rule_tables, max_size=3) | toml_values,
              "inhibit": st.lists(st.dictionaries(st.sampled_from(
                  ["id", "source", "target", "equal", "duration_s"]), toml_values), max_size=2) | toml_values,
              "hygiene": st.dictionaries(st.sampled_from(
                  ["group_by", "group_wait_s", "group_interval_s", "repeat_s", "digest_over"]),
                  toml_values) | toml_values,
              "extra": toml_values},
)  # fmt: skip


@FUZZ
@given(rule_files)
def test_any_rule_file_loads_or_raises_ruleset_error_naming_where(data) -> None:
    try:
        rulesets.parse(data, "fuzz.toml")
    except (RulesetError, ValueError) as exc:
        assert str(exc).startswith("fuzz.toml: "), str(exc)  # the file, then the rule/key


@FUZZ
@given(st.text(max_size=300))
def test_any_rules_text_loads_or_raises_ruleset_error(text) -> None:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return
    try:
        rulesets.parse(data, "fuzz.toml")
    except (RulesetError, ValueError) as exc:
        assert str(exc).startswith("fuzz.toml: "), str(exc)


TABLES = [f.name for f in dataclasses.fields(Config)]
config_data = st.dictionaries(st.sampled_from(TABLES) | st.text(max_size=6),
                              st.dictionaries(st.text(max_size=10), toml_values, max_size=4) | toml_values,
                              max_size=4)  # fmt: skip


@FUZZ
@given(config_data)
def test_any_config_tables_load_or_raise_config_error(data) -> None:
    try:
        config.from_dict(data, source="fuzz.toml")
    except ConfigError as exc:
        assert str(exc).startswith("fuzz.toml: "), str(exc)  # the file, then the key
