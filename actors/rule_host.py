"""What every actor that evaluates rules shares: the rule set it starts with, and the one it
takes back from the journal after a restart.

Actors receive a rule-set bundle (rules.engine.spec.RuleSet.to_bundle(): the applied rules and
the config's base rules, plus a `context` with deployment facts such as the session clock shift)
— or, from older callers, a plain list of threshold-rule dicts. A restarted actor re-runs its
constructor with its start-up arguments, so it asks the journal for the last `ruleset.applied`
record: a set applied with `fengkong rules apply` survives the restart instead of silently
reverting.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import ray

from rules.engine.spec import RuleSet, RuleSpec

log = logging.getLogger(__name__)
RECOVER_TIMEOUT_S = 30.0


def start_ruleset(
    rules: Sequence[Mapping[str, Any]] | Mapping[str, Any] | None, audit: Any
) -> tuple[RuleSet, dict[str, Any]]:
    """(rule set, context) an actor starts with: the journal's latest if it has one."""
    if rules is None:
        ruleset, context = RuleSet(), {}
    elif isinstance(rules, Mapping):
        ruleset, context = RuleSet.from_bundle(rules), dict(rules.get("context") or {})
    else:
        ruleset, context = RuleSet(tuple(legacy_spec(r) for r in rules)), {}
    if audit is not None and context.get("recover", False):
        latest = recover(audit)
        if latest is not None:  # the applied rules; the base is the deployment config's
            ruleset = dataclasses.replace(latest, base=ruleset.base)
    return ruleset, context


def recover(audit: Any) -> RuleSet | None:
    # Imported here, on a restart's path only: infra.rulesets loads the config package (~0.2 s
    # of every rule-evaluating actor's start) for the journal kind and the reader it needs.
    from infra import rulesets

    try:
        records = ray.get(audit.query.remote(kind=rulesets.JOURNAL_KIND), timeout=RECOVER_TIMEOUT_S)
    except Exception as exc:  # no journal: the start-up set stands
        log.warning("rule set not recovered from the journal: %s", exc)
        return None
    return rulesets.last_applied(records)


def legacy_spec(r: Mapping[str, Any]) -> RuleSpec:
    """A threshold rule from the config's `[[rules]]` dict form."""
    threshold = float(r["threshold"])
    return RuleSpec(
        id=str(r["id"]), kind="threshold", metric=str(r.get("metric", "risk_degree")),
        scope=str(r.get("scope", "account")), op=str(r.get("op", ">")), threshold=threshold,
        rearm=float(r.get("rearm", threshold)), severity=str(r.get("severity", "warning")),
        description=str(r.get("description", "")), action=dict(r.get("action") or {}) or None,
    )  # fmt: skip


def bundle_of(rules: Mapping[str, Any] | RuleSet) -> RuleSet:
    return rules if isinstance(rules, RuleSet) else RuleSet.from_bundle(rules)
