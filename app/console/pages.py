"""HTML of the console: one layout, a function per page and per live region.

Rows are rendered here only, both for the first page load and for the server-sent events that
replace a live region (`data-live` + `/events?topic=…`), so a figure reads the same on both
paths. Every figure goes through rules.display: 80.4%, ¥1,234,567.89, 北京时间.
"""

from __future__ import annotations

import json
import math
from html import escape
from typing import Any

from app.console.i18n import t
from app.console.orders_view import status_word
from rules.display import beijing, percent, yuan

NAV = ("board", "inbox", "approvals", "review", "rules", "books")


def esc(value: Any) -> str:
    return escape(str(value), quote=True)


def distance(value: float) -> str:
    """A liquidation distance is a relative price move: 3.2% (∞ when nothing is at stake)."""
    if value is None or (isinstance(value, float) and math.isinf(value)):
        return "∞"
    return percent(value)


def csrf_field(csrf: str) -> str:
    return f'<input type="hidden" name="csrf" value="{esc(csrf)}">'


def layout(lang: str, title: str, body: str, who: dict[str, str] | None, active: str = "") -> str:
    nav = ""
    if who:
        links = "".join(
            f'<a href="/{p}" class="{"on" if p == active else ""}">{t(lang, p)}</a>' for p in NAV
        )
        nav = (
            f'<nav>{links}<span class="who">{esc(who["name"])} · {esc(who["role"])}</span>'
            f'<a href="/lang?to={"zh" if lang == "en" else "en"}">{t(lang, "english")}</a>'
            f'<form method="post" action="/logout" class="inline">{csrf_field(who["csrf"])}'
            f"<button>{t(lang, 'logout')}</button></form></nav>"
        )
    return (
        f'<!doctype html><html lang="{"en" if lang == "en" else "zh-CN"}"><head>'
        '<meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{esc(title)} · {t(lang, 'title')}</title>"
        '<link rel="stylesheet" href="/static/console.css">'
        '<script src="/static/echarts.min.js"></script><script src="/static/console.js"></script>'
        f"</head><body>{nav}<main><h1>{esc(title)}</h1>{body}</main></body></html>"
    )


def login_page(lang: str, error: str = "") -> str:
    err = f'<p class="error" role="alert">{esc(error)}</p>' if error else ""
    body = (
        f'{err}<form method="post" action="/login" class="login">'
        f'<label>{t(lang, "name")}<input name="name" autocomplete="username" required></label>'
        f'<label>{t(lang, "password")}<input name="password" type="password" required></label>'
        f'<label>{t(lang, "totp")}<input name="totp" inputmode="numeric"></label>'
        f'<button type="submit" id="login">{t(lang, "login")}</button></form>'
    )
    return layout(lang, t(lang, "login"), body, None)


def html_table(header: list[str], rows: list[str], cls: str = "") -> str:
    head = "".join(f"<th>{h}</th>" for h in header)
    empty = f'<tr><td colspan="{len(header)}" class="none">—</td></tr>'
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{"".join(rows) or empty}</tbody></table>'


# ---- board -------------------------------------------------------------------------------------


def board_rows(lang: str, rows: list[dict[str, Any]]) -> str:
    out = []
    for r in rows:
        hot = "hot" if r["risk_degree"] >= 1 else ("warn" if r["risk_degree"] >= 0.8 else "")
        out.append(
            f'<tr class="{hot}" data-account="{esc(r["account_id"])}">'
            f'<td><a href="/account/{esc(r["account_id"])}">{esc(r["account_id"])}</a></td>'
            f'<td>{esc(r["group_path"])}</td><td class="num">{percent(r["risk_degree"])}</td>'
            f'<td class="num">{distance(r["liquidation_distance"])}</td>'
            f'<td class="num">{yuan(r["equity"])}</td><td class="num">{yuan(r["margin"])}</td></tr>'
        )
    cols = ["account", "group", "risk_degree", "liquidation_distance", "equity", "margin"]
    return html_table([t(lang, c) for c in cols], out, "board")


def rollup_rows(lang: str, rollups: list[dict[str, Any]]) -> str:
    out = [
        f"<tr><td>{esc(r.get('level', ''))}</td><td>{esc(r.get('node', r.get('key', '')))}</td>"
        f'<td class="num">{int(r.get("accounts", 0))}</td>'
        f'<td class="num">{percent(r.get("risk_degree", float("nan")))}</td>'
        f'<td class="num">{yuan(r.get("equity", float("nan")))}</td>'
        f'<td class="num">{yuan(r.get("margin", float("nan")))}</td></tr>'
        for r in rollups
    ]
    cols = ["group", "name", "accounts", "risk_degree", "equity", "margin"]
    return html_table([t(lang, c) for c in cols], out, "rollups")


def board_page(lang: str, who: dict, live: str, group: str, by: str, rollups: str) -> str:
    sel = "".join(
        f'<option value="{k}" {"selected" if k == by else ""}>{t(lang, k)}</option>'
        for k in ("risk_degree", "liquidation_distance")
    )
    query = json.dumps({"group": group, "by": by})
    body = (
        f'<form method="get" class="filters"><label>{t(lang, "group")}'
        f'<input name="group" value="{esc(group)}" placeholder="grpA/sub1"></label>'
        f'<label>{t(lang, "sort_by")}<select name="by">{sel}</select></label>'
        f"<button>{t(lang, 'filter')}</button></form>"
        f'<p class="live-dot">{t(lang, "live")} <span id="live-ts"></span></p>'
        f"<div data-live=\"board\" data-query='{esc(query)}'>{live}</div>"
        f"<h2>{t(lang, 'rollups')}</h2>{rollups}"
    )
    return layout(lang, t(lang, "board"), body, who, "board")


# ---- account -----------------------------------------------------------------------------------


def account_page(
    lang: str, who: dict, view: dict[str, Any], events: list[dict], chart: dict
) -> str:
    figs = "".join(
        f'<div class="fig"><span>{t(lang, k)}</span><b>{f(view[k])}</b></div>'
        for k, f in (
            ("risk_degree", percent), ("exchange_risk_degree", percent),
            ("liquidation_distance", distance), ("equity", yuan), ("margin", yuan),
            ("exchange_margin", yuan), ("available", yuan),
        )
    )  # fmt: skip
    dist = {d["instrument"]: d for d in view.get("contract_distances", [])}
    pos = [
        f"<tr><td>{esc(p['instrument'])}</td><td>{esc(p['direction'])}</td>"
        f'<td class="num">{p["volume"]:g}</td><td class="num">{p["last"]:,.2f}</td>'
        f'<td class="num">{yuan(p["margin"])}</td>'
        f'<td class="num">{percent(p["margin_rate"])} / {percent(p["exchange_margin_rate"])}</td>'
        f'<td class="num">{distance(dist.get(p["instrument"], {}).get("distance"))}</td>'
        f"<td>{'🔒' if dist.get(p['instrument'], {}).get('limit_locked') else ''}</td></tr>"
        for p in view.get("positions", [])
    ]
    cols = ["instrument", "direction", "volume", "last", "margin", "margin", "distance",
            "limit_locked"]  # fmt: skip
    header = [t(lang, c) for c in cols]
    header[5] = f"{t(lang, 'margin')} % (broker / exchange)"
    ev = [
        f"<tr><td>{beijing(r['ts'])}</td><td>{esc(r['kind'])}</td>"
        f"<td>{esc(r.get('reason') or r.get('rule_id') or r.get('ref', ''))}</td></tr>"
        for r in events
    ]
    body = (
        f'<p>{esc(view["group_path"])}</p><div class="figs">{figs}</div>'
        f"<h2>{t(lang, 'positions')}</h2>{html_table(header, pos)}"
        f'<h2>{t(lang, "chart")}</h2><p class="none">{t(lang, "main_price")}: '
        f"{esc(', '.join(chart.get('main', [])) or '—')}</p>"
        f'<div class="chart" id="chart" data-chart=\'{esc(json.dumps(chart))}\'></div>'
        f"<h2>{t(lang, 'events')}</h2>"
        f"{html_table([t(lang, 'time') + ' (北京时间)', t(lang, 'kind'), t(lang, 'record')], ev)}"
    )
    return layout(lang, f"{t(lang, 'account')} {view['account_id']}", body, who)


# ---- inbox -------------------------------------------------------------------------------------


def inbox_rows(lang: str, who: dict, pages: list[dict], can_ack: bool) -> str:
    out = []
    for p in reversed(pages):
        action = ""
        if p["state"] == "open" and can_ack:
            pid = esc(p["page_id"])
            action = (
                f'<form method="post" action="/inbox/ack" class="inline">{csrf_field(who["csrf"])}'
                f'<input type="hidden" name="alert_id" value="{pid}">'
                f'<button class="ack" data-id="{pid}">{t(lang, "ack")}</button></form>'
            )
        paged = ", ".join(esc(s) for s in p.get("steps_fired", [])) or "—"
        by = f"{esc(p.get('acked_by') or '')} {esc(p.get('acked_via') or '')}".strip()
        out.append(
            f'<tr class="{esc(p["state"])}" data-alert="{esc(p["page_id"])}">'
            f"<td>{beijing(p['started'])}</td><td>{esc(p['severity'])}</td>"
            f"<td>{esc(p['title'])}</td><td>{t(lang, p['state'])}</td>"
            f"<td>{paged} ({int(p.get('delivered', 0))})</td><td>{by or '—'}</td>"
            f"<td>{action}</td></tr>"
        )
    cols = ["started", "severity", "inbox", "state", "paged", "by", "ack"]
    return html_table([t(lang, c) for c in cols], out, "inbox")


def inbox_page(lang: str, who: dict, live: str, silences: list[dict], can_silence: bool) -> str:
    form = ""
    if can_silence:
        form = (
            f'<form method="post" action="/inbox/silence" class="filters">{csrf_field(who["csrf"])}'
            f'<label>{t(lang, "silence")}<input name="matcher" placeholder="key=ACC000123" required>'
            f'</label><label>{t(lang, "minutes")}<input name="minutes" type="number" value="60" '
            f'min="1"></label><label>{t(lang, "reason")}<input name="reason"></label>'
            f"<button>{t(lang, 'silence')}</button></form>"
        )
    rows = [
        f"<tr><td>{esc(' '.join(s.get('matchers_text', s.get('matchers', []))))}</td>"
        f"<td>{esc(s.get('created_by', ''))}</td><td>{beijing(s.get('ends_ts'))}</td></tr>"
        for s in silences
    ]
    body = (
        f'<p class="live-dot">{t(lang, "live")} <span id="live-ts"></span></p>'
        f'<div data-live="inbox">{live}</div>{form}'
        f"<h2>{t(lang, 'silenced')}</h2>"
        f"{html_table(['matcher', t(lang, 'by'), t(lang, 'time') + ' (北京时间)'], rows)}"
    )
    return layout(lang, t(lang, "inbox"), body, who, "inbox")


# ---- approvals ---------------------------------------------------------------------------------


def progress_rows(lang: str, progress: list[dict], shown: int = 40) -> str:
    """Decided proposals, one row per order: sent / partly filled / filled / rejected and the
    fill price, until the Executor verifies the proposal (then its closing state)."""
    out = []
    for p in progress[:shown]:
        closed = p["closed"]
        after = p.get("risk_degree_after")
        verdict = t(lang, closed) if closed else t(lang, "executing")
        if closed and after is not None:
            verdict += f" → {percent(after)}"
        for i, o in enumerate(p["orders"]):
            price = o.get("fill_price")
            first = (
                f'<td rowspan="{len(p["orders"])}">{esc(p["account_id"])}</td>'
                f'<td rowspan="{len(p["orders"])}" class="verdict">{esc(verdict)}</td>'
                if i == 0
                else ""
            )
            out.append(
                f'<tr class="order {esc(o["status"])}" data-order="{esc(o["order_ref"])}" '
                f'data-proposal-progress="{esc(p["proposal_id"])}" data-closed="{esc(closed)}">'
                f"{first}<td>{esc(o['instrument'])}</td>"
                f'<td class="opt">{esc(o["direction"])} {esc(o["offset"])}</td>'
                f'<td class="num">{o["filled"]:g}/{o["volume"]:g}</td>'
                f'<td class="ostatus">{t(lang, status_word(o["status"]))}</td>'
                f'<td class="num">{f"{price:,.2f}" if price is not None else "—"}</td>'
                f'<td class="opt">{esc(o.get("reason", ""))}</td></tr>'
            )
    more = len(progress) - shown
    cols = ["account", "verdict", "instrument", "direction", "filled_of", "status", "fill_price",
            "reason"]  # fmt: skip
    optional = {"direction", "reason"}  # hidden on a phone (console.css)
    head = "".join(f'<th class="{"opt" if c in optional else ""}">{t(lang, c)}</th>' for c in cols)
    empty = f'<tr><td colspan="{len(cols)}" class="none">—</td></tr>'
    table = (
        f'<table class="progress"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(out) or empty}</tbody></table>"
    )
    return table + (f'<p class="none">+{more}</p>' if more > 0 else "")


def approval_rows(
    lang: str, who: dict, pending: list[dict], groups: list[dict], can: bool, totp: bool,
    progress: list[dict] | None = None,
) -> str:  # fmt: skip
    code = f'<input name="totp" inputmode="numeric" placeholder="{t(lang, "totp")}" required>'
    code = code if totp else ""

    def decide(name: str, value: str, label: str, action: str) -> str:
        return (
            f'<form method="post" action="/approvals/{action}" class="inline">'
            f'{csrf_field(who["csrf"])}<input type="hidden" name="{name}" value="{esc(value)}">'
            f'{code}<button class="{action}">{label}</button></form>'
        )

    out = []
    for p in pending:
        pv = p.get("preview") or {}
        buttons = ""
        if can:
            buttons = decide("id", p["proposal_id"], t(lang, "approve"), "approve") + decide(
                "id", p["proposal_id"], t(lang, "reject"), "reject"
            )
        out.append(
            f'<tr data-proposal="{esc(p["proposal_id"])}"><td>{esc(p["account_id"])}</td>'
            f"<td>{esc(p['kind'])}</td><td>{esc(pv.get('explanation', ''))}</td>"
            f'<td class="num">{yuan(pv.get("notional", float("nan")))}</td>'
            f'<td class="num">{percent(pv.get("projected_risk_degree", float("nan")))}</td>'
            f"<td>{esc(p.get('proposed_by', ''))}</td><td>{esc(p.get('stage', ''))}</td>"
            f"<td>{buttons}</td></tr>"
        )
    cols = ["account", "kind", "plan", "notional", "after", "proposed_by", "stage", "approve"]
    grows = [
        f'<tr data-group="{esc(g["group_id"])}"><td>{esc(g["group_id"][:12])}</td>'
        f'<td>{esc(g["kind"])}</td><td class="num">{g["proposals"]}</td>'
        f"<td>{esc(', '.join(f'{k} {v}' for k, v in sorted(g['states'].items())))}</td>"
        f"<td>{decide('group', g['group_id'], t(lang, 'approve_group'), 'approve') if can and g['states'].get('pending') else ''}</td></tr>"
        for g in groups
    ]
    # A shock's whole group first: on a phone that is the one tap that matters.
    return (
        html_table(
            ["group", t(lang, "kind"), t(lang, "pending"), t(lang, "status"), ""], grows, "groups"
        )
        + f"<h2>{t(lang, 'pending')}</h2>"
        + html_table([t(lang, c) for c in cols], out, "approvals")
        + f"<h2>{t(lang, 'execution')}</h2>"
        + progress_rows(lang, progress or [])
    )


def approvals_page(lang: str, who: dict, live: str, notice: str = "") -> str:
    note = f'<p class="notice" role="status">{esc(notice)}</p>' if notice else ""
    body = (
        f'{note}<p class="live-dot">{t(lang, "live")} <span id="live-ts"></span></p>'
        f'<div data-live="approvals">{live}</div>'
    )
    return layout(lang, t(lang, "approvals"), body, who, "approvals")
