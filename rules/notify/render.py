"""What a notification says: one alert, a digest of many, or a coalesced batch for a robot.

Kept apart from delivery so the text a person reads can be changed (and tested) without touching
retry, escalation or the outbox.
"""

from __future__ import annotations

from typing import Any

from rules.model import Alert

DIGEST_LIST = 50  # accounts named in a digest; the rest are counted
MARKDOWN_BUDGET = 3800  # bytes of a coalesced WeCom markdown (the robot takes 4096)
TEXT_BUDGET = 1900  # bytes of a coalesced WeCom text message (the robot takes 2048)


def render(alerts: list[Alert]) -> tuple[str, str, str, dict[str, Any]]:
    """Title, plain text, markdown and figures for one alert or a digest of many."""
    first = alerts[0]
    if len(alerts) == 1:
        a = first
        figures = {
            k: a.attributes[k]
            for k in ("equity", "margin", "available", "risk_degree")
            if k in a.attributes
        }
        lines = [a.title] + [f"{k}: {v:,.2f}" for k, v in figures.items()]
        lines.append(f"alert {a.alert_id} · rule {a.rule_id} · {a.severity}")
        text = "\n".join(lines)
        md = f"**{a.title}**\n" + "\n".join(
            f'> {k}: <font color="warning">{v:,.2f}</font>' for k, v in figures.items()
        )
        md += f"\n> alert `{a.alert_id}` · {a.severity}"
        return a.title, text, md, figures
    keys = [a.key for a in alerts]
    shown = ", ".join(keys[:DIGEST_LIST]) + (
        f" … (+{len(keys) - DIGEST_LIST})" if len(keys) > DIGEST_LIST else ""
    )
    worst = max(alerts, key=lambda a: a.value)
    title = f"{len(alerts)} 个账户触发 {first.rule_id} ({len(alerts)} accounts, {first.severity})"
    text = f"{title}\nworst: {worst.key} {worst.value:.4g}\naccounts: {shown}"
    md = f'**{title}**\n> worst: {worst.key} <font color="warning">{worst.value:.4g}</font>\n> {shown}'
    return title, text, md, {"accounts": len(alerts), "worst_value": worst.value}


def batch_line(page_id: str, title: str, severity: str) -> str:
    """One line of a coalesced message: enough to see it and to `fengkong ack` it."""
    return f"- [{severity}] {title[:60]} · `{page_id}`"


def coalesced(lines: list[str]) -> tuple[str, str, str]:
    """Title, text and markdown of a batch carrying len(lines) notifications."""
    n = len(lines)
    title = f"{n} 条风控告警 ({n} risk alerts)"
    body = "\n".join(lines)
    return title, f"{title}\n{body}", f"**{title}**\n{body}"
