"""The config's old rule spellings, as the rules they stand for.

`[[rules]]`, `[[market.rules]]`, `[[books.limits]]` and `[accounts.fund_flow]` still load (with
a one-line deprecation message naming the new spelling); each entry becomes a RuleSpec of the
rule engine's kinds, validated by the same kind checks as a rules file, and joins the start-up
rule set (infra.rulesets.for_config). `fengkong rules migrate CONFIG` writes them out as a
rules file (infra.rules_migrate).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Mapping
from typing import Any

from infra.config.errors import ConfigError
from rules.engine.kinds import kind_of
from rules.engine.kinds.market import MARKET_KINDS, market_spec
from rules.engine.metrics import metrics_for
from rules.engine.spec import RuleSpec
from rules.exposure import LIMIT_METRICS, LIMIT_SCOPES
from rules.sessions import label_mask

FAMILIES = ("rules", "market.rules", "books.limits", "accounts.fund_flow")
NEW_SPELLING = {
    "rules": '[[rules]] (kind = "threshold") in a rules file',
    "market.rules": '[[rules]] of the market kinds (kind = "jump", "stale", ...) in a rules file',
    "books.limits": '[[rules]] with scope = "commodity" or "business_unit" in a rules file',
    "accounts.fund_flow": '[[rules]] of kind "fund_flow" (metric "transfer" / "day_outflow")',
}
SPELLED = {"rules": "[[rules]]", "market.rules": "[[market.rules]]",
           "books.limits": "[[books.limits]]", "accounts.fund_flow": "[accounts.fund_flow]"}  # fmt: skip
FUND_FLOW_IDS = {
    "transfer": "account.fund_flow.single_transfer_above_limit",
    "day_outflow": "account.fund_flow.outflow_above_baseline",
}


log = logging.getLogger("fengkong.config")
_TABLE = {"rules": r"\[\[\s*rules\s*\]\]", "market.rules": r"\[\[\s*market\.rules\s*\]\]",
          "books.limits": r"\[\[\s*books\.limits\s*\]\]",
          "accounts.fund_flow": r"\[\s*accounts\.fund_flow\s*\]"}  # fmt: skip


def deprecations(data: Mapping[str, Any], source: str, text: str = "") -> list[str]:
    """One line per old spelling present in the raw config, naming the new one (and, given
    the file's text, the line its table starts on)."""
    present = {
        "rules": "rules" in data,
        "market.rules": "rules" in (data.get("market") or {}),
        "books.limits": "limits" in (data.get("books") or {}),
        "accounts.fund_flow": "fund_flow" in (data.get("accounts") or {}),
    }
    out = []
    for name in (n for n in FAMILIES if present[n]):
        found = re.search(rf"^[ \t]*{_TABLE[name]}", text, re.MULTILINE) if text else None
        where = f"{source}:{text.count(chr(10), 0, found.start()) + 1}" if found else source
        out.append(f"{where}: {SPELLED[name]} in the config is deprecated: write "
                   f"{NEW_SPELLING[name]} (`fengkong rules migrate {source}` writes them)")  # fmt: skip
    return out


def warn(data: Mapping[str, Any], source: str, text: str = "") -> list[str]:
    """Log each deprecation as one warning line (logger `fengkong.config`)."""
    lines = deprecations(data, source, text)
    for line in lines:
        log.warning("%s", line)
    return lines


def _checked(spec: RuleSpec, where: str) -> RuleSpec:
    """The spec checked by its kind, its parameters completed with the kind's defaults (as a
    rules file's are, so the same rule written either way is the same version)."""
    kind = kind_of(spec.kind)
    try:
        spec = dataclasses.replace(spec, params=kind.with_defaults(dict(spec.params)))
        kind.check(spec, metrics_for(spec.scope))
    except ValueError as exc:
        raise ConfigError(f"{where}.{exc}") from None
    return spec


def rule_spec(r: Any, where: str = "rules") -> RuleSpec:
    """A `[[rules]]` entry (RuleConfig) as a threshold rule."""
    spec = RuleSpec(
        id=r.id, kind="threshold", metric=r.metric, scope=r.scope, op=r.op,
        threshold=float(r.threshold), rearm=float(r.rearm), severity=r.severity,
        description=r.description, action=dict(r.action) or None,
    )  # fmt: skip
    return _checked(spec, f"{where} ({r.id})")


def market_rule_spec(r: Any) -> RuleSpec:
    """A `[[market.rules]]` entry (MarketRuleConfig) as a rule of its market kind."""
    where = f"market.rules ({r.id})"
    if r.kind not in MARKET_KINDS:
        raise ConfigError(f"{where}: kind {r.kind!r} not one of {MARKET_KINDS}")
    try:
        label_mask(r.sessions)
    except ValueError as exc:
        raise ConfigError(f"{where}.sessions: {exc}") from None
    spec = market_spec(r.id, r.kind, r.threshold, r.rearm, r.severity, tuple(r.sessions),
                       tuple(r.products), r.window_s, r.description)  # fmt: skip
    return _checked(spec, where)


def book_limit_spec(lim: Any) -> RuleSpec:
    """A `[[books.limits]]` entry (ExposureLimitConfig) as a threshold rule on a book scope."""
    where = f"books.limits ({lim.id})"
    if lim.metric not in LIMIT_METRICS:
        raise ConfigError(f"{where}.metric: must be one of {LIMIT_METRICS}")
    if lim.scope not in LIMIT_SCOPES:
        raise ConfigError(f"{where}.scope: must be one of {LIMIT_SCOPES}")
    params = {"commodities": tuple(lim.commodities)} if lim.commodities else {}
    spec = RuleSpec(
        id=lim.id, kind="threshold", metric=lim.metric, scope=lim.scope, op=lim.op,
        threshold=float(lim.threshold), rearm=float(lim.rearm), severity=lim.severity,
        description=lim.description, params=params,
    )  # fmt: skip
    return _checked(spec, where)


def fund_flow_specs(ff: Any) -> list[RuleSpec]:
    """`[accounts.fund_flow]` (FundFlowConfig) as its two fund_flow rules, with the ids the
    shard's events always had."""
    where = "accounts.fund_flow"
    single = RuleSpec(
        id=FUND_FLOW_IDS["transfer"], kind="fund_flow", metric="transfer",
        threshold=float(ff.single_limit), severity=ff.severity,
        description="a single transfer above the limit",
    )  # fmt: skip
    outflow = RuleSpec(
        id=FUND_FLOW_IDS["day_outflow"], kind="fund_flow", metric="day_outflow",
        threshold=float(ff.k), severity=ff.severity,
        description=f"the day's outflow above {ff.k:g} × the mean of the last {ff.days} days",
        params={"days": int(ff.days), "min_days": int(ff.min_days)},
    )  # fmt: skip
    return [_checked(single, where), _checked(outflow, where)]


def legacy_specs(cfg: Any) -> dict[str, tuple[list[RuleSpec], bool]]:
    """Per old spelling: its rules, and whether they are the embedded default (not written
    in the config): a default family gives way to a rules file's rules of that family."""
    base = type(cfg)()  # the defaults of the Config this one came from (no import of it)
    return {
        "rules": ([rule_spec(r, f"rules[{i}]") for i, r in enumerate(cfg.rules)],
                  cfg.rules == base.rules),
        "market.rules": ([market_rule_spec(r) for r in cfg.market.rules],
                         cfg.market.rules == base.market.rules),
        "books.limits": ([book_limit_spec(lim) for lim in cfg.books.limits], not cfg.books.limits),
        "accounts.fund_flow": (fund_flow_specs(cfg.accounts.fund_flow),
                               cfg.accounts.fund_flow == base.accounts.fund_flow),
    }  # fmt: skip


def family_of(spec: RuleSpec) -> str:
    """Which old spelling a rule of a rules file stands in for."""
    if spec.kind in MARKET_KINDS:
        return "market.rules"
    if spec.kind == "fund_flow":
        return "accounts.fund_flow"
    if spec.scope in LIMIT_SCOPES:
        return "books.limits"
    return "rules"
