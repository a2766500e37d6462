"""`fengkong rules migrate CONFIG [--out FILE]`: the config's old rule spellings as a rules file.

The file holds every rule the config's own tables stand for — `[[rules]]`, `[[market.rules]]`,
`[[books.limits]]`, `[accounts.fund_flow]`, including the embedded defaults they fall back to
(so nothing silently changes once they are gone) — in the rules-file spelling. With the old
tables deleted from the config and the file added to `rules_files`, the start-up rule set is
the same set, same version (infra.rulesets.for_config; tested on examples/fengkong.toml).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from infra import config as config_mod
from infra import rulesets
from infra.config.legacy import FAMILIES, SPELLED, family_of
from rules.engine.kinds.market import MARKET_KINDS, OP_OF, SCOPE_OF
from rules.engine.spec import RuleSpec

DEFAULT_SCOPE = {"threshold": "account", "session": "account", "fund_flow": "account",
                 "composite": "any", **SCOPE_OF}  # fmt: skip


def migrate(cfg: Any) -> list[RuleSpec]:
    """The rules of a config's old spellings that its start-up set holds."""
    files = tuple(cfg.rules_files)
    from_files = {s.id for s in rulesets.load(files).rules} if files else set()
    return [s for s in rulesets.for_config(cfg).everything if s.id not in from_files]


def migrate_file(path: str) -> tuple[Any, str]:
    """Load CONFIG (its deprecation messages are what this answers: not repeated) and return
    it with the rules file text."""
    cfg = config_mod.load(path, deprecations=False)
    return cfg, to_toml(migrate(cfg), cfg.source)


def to_toml(specs: list[RuleSpec], source: str) -> str:
    lines = [
        f"# Rules migrated from {source} by `fengkong rules migrate`.",
        f"# Add this file to `rules_files` in {source} and delete its old tables",
        f"# ({', '.join(SPELLED[f] for f in FAMILIES)}): the rule set stays the same.",
    ]
    family = None
    for spec in specs:
        if family_of(spec) != family:
            family = family_of(spec)
            lines += ["", f"# ---- formerly {SPELLED[family]}"]
        lines += ["", "[[rules]]", *(f"{k} = {_value(v)}" for k, v in _fields(spec).items())]
    return "\n".join(lines) + "\n"


def _fields(spec: RuleSpec) -> dict[str, Any]:
    """The keys a rules file needs for `spec` (what the kind fixes or defaults is left out)."""
    market = spec.kind in MARKET_KINDS
    out: dict[str, Any] = {"id": spec.id, "kind": spec.kind}
    if not market and spec.kind != "composite":
        out["metric"] = spec.metric
    if spec.scope != DEFAULT_SCOPE.get(spec.kind, "account"):
        out["scope"] = spec.scope
    if not (market and spec.op == OP_OF[spec.kind]) and spec.op != ">":
        out["op"] = spec.op
    out["threshold"] = float(spec.threshold)
    if spec.rearm is not None:
        out["rearm"] = float(spec.rearm)
    out["severity"] = spec.severity
    if spec.description:
        out["description"] = spec.description
    if spec.sessions:
        out["sessions"] = list(spec.sessions)
    if spec.repeat_s is not None:
        out["repeat_s"] = float(spec.repeat_s)
    out.update({k: v for k, v in spec.params.items()})
    if spec.action:
        out["action"] = dict(spec.action)
    return out


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # JSON's escapes are TOML's basic-string ones
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{k} = {_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {v!r} in a rules file")
