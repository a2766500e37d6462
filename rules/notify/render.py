"""What a notification says: one alert, a digest of many, or a coalesced batch for a robot.

Kept apart from delivery so the text a person reads can be changed (and tested) without touching
retry, escalation or the outbox. Figures read as a risk manager reads them (rules.display: 80.4%,
¥1,234,567.89, Beijing time labelled); a page names what to do next (the proposal id and the
command that approves it, the console page); each channel gets its own form in the figures:
`sms` (one 70-character UCS-2 segment where possible) and `voice` (speakable Chinese, no ids or
symbols a text-to-speech engine spells badly).
"""

from __future__ import annotations

import math
from typing import Any

from rules.display import beijing, percent, yuan
from rules.model import Alert, stable_id

DIGEST_LIST = 50  # accounts named in a digest; the rest are counted
MARKDOWN_BUDGET = 3800  # bytes of a coalesced WeCom markdown (the robot takes 4096)
TEXT_BUDGET = 1900  # bytes of a coalesced WeCom text message (the robot takes 2048)
SMS_SEGMENT = 70  # characters of one SMS segment in UCS-2 (any Chinese character forces it)

MONEY = ("equity", "margin", "available", "deficit", "margin_call")
LABELS = {
    "risk_degree": "风险度", "equity": "权益", "margin": "保证金", "available": "可用资金",
    "deficit": "缺口", "distance": "距强平", "liquidation_distance": "距强平",
}  # fmt: skip
RATIO_HINTS = ("risk_degree", "distance", "ratio", "drawdown", "share", "concentration")


def is_ratio(name: str) -> bool:
    """Figures that are ratios (risk degree, distances in percent of price...) print as percent."""
    return any(h in name for h in RATIO_HINTS)


def figure(name: str, value: Any) -> str:
    """One figure as it is read: a ratio in percent, money in yuan, anything else as a number."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return str(value)
    if is_ratio(name):
        return percent(float(value), 2 if abs(value) < 0.1 else 1)
    if name in MONEY:
        return yuan(float(value))
    return f"{value:,.4g}"


def _metric(a: Alert) -> str:
    return str(a.attributes.get("kind") or a.rule_id)


def lower_is_worse(a: Alert) -> bool:
    """The rule's direction: `<` rules (a liquidation distance, available funds) breach by going
    below their threshold. Taken from the alert's `op` when it carries one, else from which side
    of the threshold the breaching value lies."""
    op = str(a.attributes.get("op", "")) if a.attributes else ""
    if op:
        return op.startswith("<")
    return a.value < a.threshold


def past_threshold(a: Alert) -> float:
    """How far past its threshold an alert is, in the rule's direction (relative when the
    threshold is not zero, so accounts on different tiers compare)."""
    gap = (a.threshold - a.value) if lower_is_worse(a) else (a.value - a.threshold)
    if math.isnan(gap):
        return -math.inf
    return gap / abs(a.threshold) if a.threshold else gap


def worst(alerts: list[Alert]) -> Alert:
    """The alert of a group furthest past its threshold in its rule's direction."""
    return max(alerts, key=past_threshold)


def proposal_of(a: Alert) -> str:
    """The proposal the alert's action makes (the Correlator's id: alert id + action kind)."""
    if a.attributes.get("proposal_id"):
        return str(a.attributes["proposal_id"])
    action = a.attributes.get("action") or {}
    kind = action.get("kind") if isinstance(action, dict) else None
    return stable_id("proposal", a.alert_id, kind) if kind else ""


def console_link(console_url: str, a: Alert) -> str:
    if not console_url:
        return ""
    base = console_url.rstrip("/")
    return f"{base}/account/{a.key}" if a.dimension == "account" else f"{base}/inbox"


def _what_to_do(a: Alert) -> list[str]:
    pid = proposal_of(a)
    if not pid:
        return []
    action = a.attributes.get("action") or {}
    what = f"提案 proposal {pid}"
    if isinstance(action, dict) and action.get("kind"):
        target = action.get("target")
        what += f" ({action['kind']}"
        what += f" → 风险度 {percent(float(target))})" if target is not None else ")"
    return [
        what,
        f"批准 approve: fengkong approve {pid} (orders and figures after: `fengkong show {pid}`)",
    ]  # noqa: E501


def render(alerts: list[Alert], console_url: str = "") -> tuple[str, str, str, dict[str, Any]]:
    """Title, plain text, markdown and figures for one alert or a digest of many; the figures
    carry `sms` and `voice`, the channel forms of the same page."""
    first = alerts[0]
    if len(alerts) == 1:
        return _single(first, console_url)
    return _digest(alerts, console_url)


def _single(a: Alert, console_url: str) -> tuple[str, str, str, dict[str, Any]]:
    figures = {k: a.attributes[k] for k in (*LABELS, "available") if k in a.attributes}
    metric = _metric(a).split(".")[-1]
    when = beijing(a.created_ts)
    lines = [a.title]
    lines.append(
        f"{metric}: {figure(metric, a.value)} (阈值 threshold {figure(metric, a.threshold)})"
    )
    lines += [f"{LABELS.get(k, k)} {k}: {figure(k, v)}" for k, v in figures.items() if k != metric]
    todo = _what_to_do(a)
    link = console_link(console_url, a)
    tail = [*todo, f"时间 {when}", f"alert {a.alert_id} · rule {a.rule_id} · {a.severity}"]
    text = "\n".join(lines + tail + ([link] if link else []))
    md = f"**{a.title}**\n" + "\n".join(f"> {x}" for x in lines[1:])
    md += "".join(f"\n> {x}" for x in todo)
    md += f"\n> {when} · alert `{a.alert_id}` · {a.severity}"
    if link:
        md += f"\n> [打开控制台 open in console]({link})"
    pid = proposal_of(a)
    sms = _fit(f"[风控]{a.key} {metric} {figure(metric, a.value)}/{figure(metric, a.threshold)}"
               f"{' 提案' + pid[:12] if pid else ''} {when[11:16]}")  # fmt: skip
    voice = (
        f"风控告警。{_spoken_key(a.key)}，{_spoken_metric(metric)}{_spoken(metric, a.value)}，"
        f"阈值{_spoken(metric, a.threshold)}。{'已生成处置提案，请审批。' if pid else ''}"
    )
    out = {**figures, "sms": sms, "voice": voice, "time": when}
    if pid:
        out["proposal_id"] = pid
    if link:
        out["link"] = link
    return a.title, text, md, out


def _digest(alerts: list[Alert], console_url: str) -> tuple[str, str, str, dict[str, Any]]:
    first = alerts[0]
    keys = [a.key for a in alerts]
    shown = ", ".join(keys[:DIGEST_LIST]) + (
        f" … (+{len(keys) - DIGEST_LIST})" if len(keys) > DIGEST_LIST else ""
    )
    w = worst(alerts)
    metric = _metric(w).split(".")[-1]
    side = "最低 lowest" if lower_is_worse(w) else "最高 highest"
    when = beijing(max(a.created_ts for a in alerts))
    title = f"{len(alerts)} 个账户触发 {first.rule_id} ({len(alerts)} accounts, {first.severity})"
    worst_line = (
        f"最严重 worst ({side}): {w.key} {figure(metric, w.value)} "
        f"(阈值 threshold {figure(metric, w.threshold)})"
    )
    link = f"{console_url.rstrip('/')}/inbox" if console_url else ""
    text = f"{title}\n{worst_line}\naccounts: {shown}\n时间 {when}" + (f"\n{link}" if link else "")
    md = f"**{title}**\n> {worst_line}\n> {shown}\n> {when}"
    if link:
        md += f"\n> [打开控制台 open in console]({link})"
    sms = _fit(
        f"[风控]{len(alerts)}户触发{metric} 最严重{w.key} {figure(metric, w.value)} {when[11:16]}"
    )
    voice = (
        f"风控告警。{len(alerts)}个账户触发{_spoken_metric(metric)}规则，最严重的是"
        f"{_spoken_key(w.key)}，{_spoken(metric, w.value)}。"
    )
    figures = {"accounts": len(alerts), "worst_key": w.key, "worst_value": w.value,
               "sms": sms, "voice": voice, "time": when}  # fmt: skip
    if link:
        figures["link"] = link
    return title, text, md, figures


def _fit(s: str) -> str:
    """One SMS segment where possible: cut at 70 characters, the cut marked."""
    return s if len(s) <= SMS_SEGMENT else s[: SMS_SEGMENT - 1] + "…"


DIGITS = "零一二三四五六七八九"


def _spoken_number(x: float, digits: int = 1) -> str:
    """A number read out in Chinese: 80.4 → 八十点四 (digit by digit after the point)."""
    if math.isinf(x):
        return "已穿仓"
    neg = x < 0
    whole, _, frac = f"{abs(x):.{digits}f}".partition(".")
    n = int(whole)
    if n == 0:
        words = "零"
    elif n < 10_000:
        words, units = "", ("千", "百", "十", "")
        for d, u in zip(f"{n:04d}", units, strict=True):
            words += (
                (DIGITS[int(d)] + u)
                if d != "0"
                else ("零" if words and not words.endswith("零") else "")
            )
        words = words.rstrip("零")
        words = words[1:] if words.startswith("一十") else words
    else:
        words = "".join(DIGITS[int(d)] for d in whole)
    frac = frac.rstrip("0")
    return (
        ("负" if neg else "")
        + words
        + ("点" + "".join(DIGITS[int(d)] for d in frac) if frac else "")
    )


def _spoken(metric: str, value: float) -> str:
    if is_ratio(metric):
        return "百分之" + _spoken_number(value * 100, 1 if abs(value) >= 0.1 else 2)
    if metric in MONEY:
        return _spoken_number(value, 0) + "元"
    return _spoken_number(value, 2)


def _spoken_metric(metric: str) -> str:
    return LABELS.get(metric, metric.replace("_", " "))


def _spoken_key(key: str) -> str:
    """An account id read out: letters and digits one by one (ACC000123 → 账户 A C C 零零零一二三)."""
    spoken = " ".join(DIGITS[int(c)] if c.isdigit() else c for c in key)
    return f"账户 {spoken}"


def batch_line(page_id: str, title: str, severity: str) -> str:
    """One line of a coalesced message: enough to see it and to `fengkong ack` it."""
    return f"- [{severity}] {title[:60]} · `{page_id}`"


def coalesced(lines: list[str]) -> tuple[str, str, str]:
    """Title, text and markdown of a batch carrying len(lines) notifications."""
    n = len(lines)
    title = f"{n} 条风控告警 ({n} risk alerts)"
    body = "\n".join(lines)
    return title, f"{title}\n{body}", f"**{title}**\n{body}"
