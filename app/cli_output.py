"""What the CLI prints for people: one-line errors, pending proposals as a risk manager reads
them, times in Beijing time labelled (rules.display)."""

from __future__ import annotations

from typing import Any

from rules.display import beijing, percent, yuan


class OperatorError(ValueError):
    """A mistake of the operator's (an unknown id, a bad option value): one line, exit 2."""


def one_line(exc: BaseException) -> str:
    """An error as one line: its first non-empty line (a Ray error's cause, not its traceback)."""
    cause = getattr(exc, "cause", None)  # ray.exceptions.RayTaskError / ActorDiedError
    if isinstance(cause, BaseException) and cause is not exc:
        exc = cause
    lines = [x.strip() for x in str(exc).splitlines() if x.strip()]
    text = lines[0] if lines else type(exc).__name__
    if "Traceback" in text or text.startswith("ray::"):
        text = next((x for x in reversed(lines) if not x.startswith(("File ", "  "))), text)
    return text


def proposal_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Pending proposals as a risk manager reads them: what approving will do (orders, size,
    the risk degree expected after), when it was proposed (Beijing time), and how to approve."""
    out = []
    for p in rows:
        pv = p.get("preview") or {}
        after = pv.get("projected_risk_degree")
        does = (
            f"{pv.get('legs', 0)} order(s), {yuan(pv.get('notional', 0.0))}, risk degree after "
            f"{percent(after) if after is not None else '—'}"
            if "legs" in pv
            else pv.get("explanation", "")
        )
        out.append(
            f"{p['proposal_id']}  {p['kind']:<10} {p['account_id']:<12} "
            f"target {percent(p['target_risk_degree'])}  approve → {does}  "
            f"{beijing(p.get('created_ts'))}  {p.get('stage', '')}  group {p.get('group_id', '')}"
            f"  {p.get('reason', '')}"
        )
        out.append(f"    fengkong approve {p['proposal_id']}")
    return out


def rollup_text(rows: list[dict[str, Any]]) -> str:
    """Roll-ups of the hierarchy: money in yuan, risk degree in percent."""
    lines = [f"{'node':<28}{'level':<11}{'accounts':>9}{'equity':>20}{'margin':>20}{'risk':>8}"]
    for r in rows:
        lines.append(
            f"{r['node']:<28}{r['level']:<11}{r['accounts']:>9.0f}{yuan(r['equity']):>20}"
            f"{yuan(r['margin']):>20}{percent(r['risk_degree']):>8}"
        )
    return "\n".join(lines)


def top_text(rows: list[dict[str, Any]]) -> str:
    """The riskiest accounts: money in yuan, risk degree and distance to the line in percent."""
    from infra.account_notes import risk_text

    lines = [f"{'account':<12}{'group':<22}{'equity':>18}{'margin':>18}{'risk':>8}{'to line':>9}"]
    for r in rows:
        lines.append(
            f"{r['account_id']:<12}{r['group_path']:<22}{yuan(r['equity']):>18}"
            f"{yuan(r['margin']):>18}{risk_text(r['risk_degree']):>8}"
            f"{percent(r['liquidation_distance'], 2):>9}"
        )
    return "\n".join(lines)
