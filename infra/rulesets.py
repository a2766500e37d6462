"""Rule sets as files: load TOML, validate, version, diff, journal.

A rules file has `[[rules]]` (one table per rule), optional `[[inhibit]]` rules and an
optional `[hygiene]` table; several files load as one set (rule ids unique across them; later
files' hygiene keys win). Every error names the file, the rule and the key, because the person
fixing it has only the file in front of them:

    rules/ops.toml: rules[3] (account.cancels).window_s: expected int/float, got 'fast'

A loaded set is a `rules.engine.spec.RuleSet`; its version is a hash of its content. Applying
it (start-up, `fengkong rules apply`) journals a `ruleset.applied` record with who, when, the
version, the full set and the diff against the previous one; a restarted actor reads the last
such record back, so a hot-reloaded set survives restarts.
"""

from __future__ import annotations

import difflib
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from infra import anomaly_models
from infra.config import ConfigError, legacy
from rules.engine.kinds import KINDS, kind_of
from rules.engine.kinds.market import MARKET_KINDS, OP_OF, SCOPE_OF
from rules.engine.matchers import parse_matchers
from rules.engine.metrics import metrics_for
from rules.engine.spec import Hygiene, InhibitRule, RuleSet, RuleSpec, diff
from rules.sessions import label_mask

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

COMMON = ("id", "kind", "metric", "scope", "op", "threshold", "rearm", "severity",
          "description", "sessions", "repeat_s", "action")  # fmt: skip
TOP_LEVEL = ("rules", "inhibit", "hygiene")
JOURNAL_KIND = "ruleset.applied"
DEFAULT_VOL_WINDOWS = (60, 300, 1800)


class RulesetError(ConfigError):
    """A rules-file problem: `file: rules[i] (id).key: why` (a ConfigError: `fengkong run`
    and `demo` report it like a config error and exit 2)."""


def load(paths: Sequence[str | Path], vol_windows: Sequence[int] = DEFAULT_VOL_WINDOWS) -> RuleSet:
    """Load and validate rules files into one RuleSet (RulesetError on the first problem)."""
    if not paths:
        raise RulesetError("no rules file given")
    rules: list[RuleSpec] = []
    inhibit: list[InhibitRule] = []
    hygiene: dict[str, Any] = {}
    where_of: dict[str, str] = {}
    for path in paths:
        p = Path(path)
        data = _read(p)
        parsed = parse(data, str(p), vol_windows)
        for spec in parsed.rules:
            if spec.id in where_of:
                raise RulesetError(
                    f"{p}: rule {spec.id!r} is already defined in {where_of[spec.id]}"
                )
            where_of[spec.id] = str(p)
            rules.append(spec)
        inhibit.extend(parsed.inhibit)
        hygiene.update(data.get("hygiene") or {})
    ids = [i.id for i in inhibit]
    if len(set(ids)) != len(ids):
        raise RulesetError(
            f"{', '.join(map(str, paths))}: inhibit rule ids must be unique, got {ids}"
        )
    h = _hygiene(hygiene, str(paths[-1]))
    return RuleSet(tuple(rules), tuple(inhibit), h, ", ".join(str(p) for p in paths))


def parse(
    data: Mapping[str, Any], source: str, vol_windows: Sequence[int] = DEFAULT_VOL_WINDOWS
) -> RuleSet:
    """A RuleSet from one file's parsed TOML (`source` names it in errors)."""
    for key in data:
        if key not in TOP_LEVEL:
            _fail(source, key, f"unknown table{_hint(key, TOP_LEVEL)}")
    raw_rules = data.get("rules", [])
    if not isinstance(raw_rules, list):
        _fail(source, "rules", "expected [[rules]] tables")
    specs = [_guarded(rule_from, r, f"rules[{i}]", source, vol_windows)
             for i, r in enumerate(raw_rules)]  # fmt: skip
    ids = [s.id for s in specs]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        _fail(source, "rules", f"rule ids must be unique, repeated: {dupes}")
    raw_inhibit = data.get("inhibit", [])
    if not isinstance(raw_inhibit, list):
        _fail(source, "inhibit", "expected [[inhibit]] tables")
    inhibit = [_guarded(_inhibit, r, f"inhibit[{i}]", source) for i, r in enumerate(raw_inhibit)]
    return RuleSet(
        tuple(specs), tuple(inhibit), _hygiene(data.get("hygiene") or {}, source), source
    )


def rule_from(
    raw: Any, where: str, source: str, vol_windows: Sequence[int] = DEFAULT_VOL_WINDOWS
) -> RuleSpec:
    if not isinstance(raw, Mapping):
        _fail(source, where, "expected a table")
    rid = raw.get("id")
    if not isinstance(rid, str) or not rid:
        _fail(source, f"{where}.id", "missing (every rule needs a unique string id)")
    at = f"{where} ({rid})"
    kind_name = raw.get("kind", "threshold")
    if not isinstance(kind_name, str) or kind_name not in KINDS:
        _fail(
            source,
            f"{at}.kind",
            f"{kind_name!r} is not one of {sorted(KINDS)}{_hint(str(kind_name), KINDS)}",
        )
    kind = kind_of(kind_name)
    declared = [p.name for p in kind.params]
    params_raw = {}
    for key, value in raw.items():
        if key not in COMMON and key not in declared:
            _fail(
                source,
                f"{at}.{key}",
                f"unknown key for kind {kind_name!r}{_hint(key, [*COMMON, *declared])}",
            )
        if key in declared:
            params_raw[key] = value
    try:
        params = kind.with_defaults(params_raw)
    except ValueError as exc:
        _fail(source, f"{at}.{_key_of(exc)}", _why(exc))
    if kind_name == "anomaly":  # the model file's record travels in the rule (infra.anomaly_models)
        try:
            params = anomaly_models.embed(params, source)
        except ValueError as exc:
            _fail(source, f"{at}.model", str(exc))
    common = {k: raw[k] for k in COMMON if k in raw}
    for key, typ in (("threshold", float), ("rearm", float), ("repeat_s", float)):
        if key in common:
            value = common[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                _fail(source, f"{at}.{key}", f"expected a number, got {value!r}")
            common[key] = typ(value)
    for key in ("metric", "scope", "op", "severity", "description"):
        if key in common and not isinstance(common[key], str):
            _fail(source, f"{at}.{key}", f"expected a string, got {common[key]!r}")
    sessions = common.get("sessions", [])
    if not isinstance(sessions, list) or not all(isinstance(s, str) for s in sessions):
        _fail(source, f"{at}.sessions", "expected a list of session names")
    try:
        label_mask(sessions)
    except ValueError as exc:
        _fail(source, f"{at}.sessions", str(exc))
    common["sessions"] = tuple(sessions)
    action = common.get("action")
    if action is not None and not isinstance(action, Mapping):
        _fail(source, f"{at}.action", 'expected a table like { kind = "reduce", target = 0.7 }')
    for key, value in kind.defaults.items():  # e.g. the metric an adaptive kind judges
        common.setdefault(key, value)
    if kind_name in MARKET_KINDS:  # the kind fixes what it compares, where and how
        common.setdefault("metric", kind_name)
        common.setdefault("scope", SCOPE_OF[kind_name])
        common.setdefault("op", OP_OF[kind_name])
    elif kind_name == "composite":
        common.setdefault("metric", kind_name)
        common.setdefault("scope", "any")
    spec = RuleSpec(**common, params=params)  # type: ignore[arg-type]
    try:
        kind.check(spec, metrics_for(spec.scope))
    except ValueError as exc:
        _fail(source, f"{at}.{_key_of(exc)}", _why(exc))
    if kind_name == "volatility" and int(spec.param("window_s")) not in vol_windows:
        _fail(
            source,
            f"{at}.window_s",
            f"must be one of the feed's volatility windows {tuple(vol_windows)}",
        )
    return spec


def _inhibit(raw: Any, where: str, source: str) -> InhibitRule:
    if not isinstance(raw, Mapping):
        _fail(source, where, "expected a table")
    allowed = ("id", "source", "target", "equal", "duration_s")
    for key in raw:
        if key not in allowed:
            _fail(source, f"{where}.{key}", f"unknown key{_hint(key, allowed)}")
    rid = raw.get("id")
    if not isinstance(rid, str) or not rid:
        _fail(source, f"{where}.id", "missing")
    at = f"{where} ({rid})"
    matchers = {}
    for key in ("source", "target"):
        value = raw.get(key)
        if not isinstance(value, list) or not value:
            _fail(
                source,
                f"{at}.{key}",
                'expected a non-empty list of matchers like "severity=critical"',
            )
        try:
            matchers[key] = parse_matchers(value)
        except ValueError as exc:
            _fail(source, f"{at}.{key}", str(exc))
    equal = raw.get("equal", ["key"])
    if not isinstance(equal, list) or not all(isinstance(e, str) for e in equal):
        _fail(source, f"{at}.equal", "expected a list of label names")
    duration = raw.get("duration_s", 3600.0)
    if isinstance(duration, bool) or not isinstance(duration, (int, float)) or duration <= 0:
        _fail(source, f"{at}.duration_s", "expected a positive number of seconds")
    return InhibitRule(rid, matchers["source"], matchers["target"], tuple(equal), float(duration))


def _hygiene(raw: Mapping[str, Any], source: str) -> Hygiene:
    allowed = ("group_by", "group_wait_s", "group_interval_s", "repeat_s", "digest_over")
    out: dict[str, Any] = {}
    if not isinstance(raw, Mapping):
        _fail(source, "hygiene", "expected a [hygiene] table")
    for key, value in raw.items():
        if key not in allowed:
            _fail(source, f"hygiene.{key}", f"unknown key{_hint(key, allowed)}")
        if key == "group_by":
            if (
                not isinstance(value, list)
                or not value
                or not all(isinstance(v, str) for v in value)
            ):
                _fail(source, "hygiene.group_by", "expected a non-empty list of label names")
            out[key] = tuple(value)
        elif key == "digest_over":
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                _fail(source, "hygiene.digest_over", "expected a whole number of alerts >= 1")
            out[key] = value
        else:
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not 0 <= value < float("inf")  # NaN and inf too
            ):
                _fail(source, f"hygiene.{key}", "expected a number of seconds >= 0")
            out[key] = float(value)
    return Hygiene(**out)


def for_config(cfg: Any) -> RuleSet:
    """The start-up rule set of a config: `rules_files` plus the config's own `[[rules]]`
    (the embedded default rule is left out when rules files are given), on the base of the
    config's other old spellings (`config_base`)."""
    windows = tuple(cfg.market.stats.vol_windows_s)
    files = tuple(getattr(cfg, "rules_files", ()) or ())
    loaded = load(files, windows) if files else RuleSet(source=cfg.source)
    own, is_default = legacy.legacy_specs(cfg)["rules"]
    if files and is_default:
        own = []
    clash = sorted({s.id for s in own} & {s.id for s in loaded.rules})
    if clash:
        raise RulesetError(f"{cfg.source}: rules {clash} are in both [[rules]] and {loaded.source}")
    base = config_base(cfg, loaded)
    clash = sorted({s.id for s in base} & {s.id for s in (*own, *loaded.rules)})
    if clash:
        raise RulesetError(
            f"{cfg.source}: rules {clash} are both in the config and in a rules file"
        )
    return RuleSet(tuple(own) + loaded.rules, loaded.inhibit, loaded.hygiene, loaded.source, base)


def config_base(cfg: Any, loaded: RuleSet | None = None) -> tuple[RuleSpec, ...]:
    """The rules of `[[market.rules]]`, `[[books.limits]]` and `[accounts.fund_flow]` (infra.
    config.legacy): the deployment's base, kept by a hot reload as these tables always were.
    A family left at its embedded default gives way to the start-up rules files' rules of
    that family (the defaults are then written there, e.g. by `fengkong rules migrate`)."""
    if loaded is None:
        files = tuple(getattr(cfg, "rules_files", ()) or ())
        loaded = load(files, tuple(cfg.market.stats.vol_windows_s)) if files else RuleSet()
    in_files = {legacy.family_of(s) for s in loaded.everything}
    out: list[RuleSpec] = []
    for family, (specs, is_default) in legacy.legacy_specs(cfg).items():
        if family == "rules" or (is_default and family in in_files):
            continue
        out.extend(specs)
    return tuple(out)


# ---- where each rule runs ------------------------------------------------------------------


def placed(ruleset: RuleSet, place: str) -> list[RuleSpec]:
    """The rules (base and applied) of a set that run at `place` (see RuleKind.place)."""
    return [r for r in ruleset.everything if kind_of(r.kind).place(r) == place]


# ---- journal -------------------------------------------------------------------------------


def applied_record(
    new: RuleSet, old: RuleSet | None, by: str, how: str = "apply", ts: float | None = None
) -> dict[str, Any]:
    """The journal record of a rule-set change: who, when, version, content and diff."""
    return {
        "kind": JOURNAL_KIND,
        "actor": "rulesets",
        "key": new.version,
        "ref": new.version,
        "ts": time.time() if ts is None else ts,
        "by": by,
        "how": how,
        "version": new.version,
        "source": new.source,
        "bundle": new.to_bundle(),
        "diff": diff(old, new),
    }


def last_applied(records: Iterable[Mapping[str, Any]]) -> RuleSet | None:
    """The rule set of the last `ruleset.applied` record, if any."""
    last = None
    for rec in records:
        if rec.get("kind", JOURNAL_KIND) == JOURNAL_KIND and rec.get("bundle"):
            last = rec
    return RuleSet.from_bundle(last["bundle"]) if last is not None else None


# ---- helpers -------------------------------------------------------------------------------


def _guarded(build: Any, raw: Any, where: str, source: str, *args: Any) -> Any:
    """A value of the wrong shape deep in a table (a list where a number goes) is that table's
    RulesetError naming it, never a TypeError from inside the rule kind."""
    try:
        return build(raw, where, source, *args)
    except (TypeError, AttributeError, KeyError, OverflowError) as exc:
        rid = raw.get("id", "?") if isinstance(raw, Mapping) else "?"
        return _fail(source, f"{where} ({rid})", f"malformed value: {type(exc).__name__}: {exc}")


def _read(p: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RulesetError(f"{p}: file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise RulesetError(f"{p}: not valid TOML: {exc}") from None


def _fail(source: str, where: str, why: str) -> Any:
    raise RulesetError(f"{source}: {where}: {why}")


def _hint(key: str, options: Iterable[str]) -> str:
    found = difflib.get_close_matches(key, list(options), n=1)
    return f" (did you mean '{found[0]}'?)" if found else ""


def _key_of(exc: ValueError) -> str:
    text = str(exc)
    return text.split(":", 1)[0] if ":" in text else "?"


def _why(exc: ValueError) -> str:
    text = str(exc)
    return text.split(":", 1)[1].strip() if ":" in text else text
