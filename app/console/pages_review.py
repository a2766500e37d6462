"""Pages of the console that read the record: 复盘 + KPIs, rules, operating books."""

from __future__ import annotations

import collections
import datetime as dt
import json
from typing import Any

from app.console.i18n import t
from app.console.pages import esc, html_table, layout
from rules.display import BEIJING, beijing, percent, yuan
from rules.execution.outcomes import event_outcome, proposal_outcome


def kpis(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Closed-loop rate and response times per Beijing day and per person, from the journal:
    proposals, decisions and closes (`proposal_closed`). A day's rate counts as the KPI report
    does (rules.execution.outcomes): events executed and verified over events that needed
    action, moot ones left out."""
    proposed = {r["ref"]: r["ts"] for r in records if r["kind"] == "proposal"}
    closed = {r["ref"]: r for r in records if r["kind"] == "proposal_closed"}
    events: dict[str, list[tuple[float, str]]] = collections.defaultdict(list)
    for r in records:
        if r["kind"] == "proposal":
            c = closed.get(r["ref"])
            out = proposal_outcome(c.get("state"), c.get("reason", "")) if c else "open"
            events[r.get("alert_id") or r["ref"]].append((r["ts"], out))
    by_day: dict[str, dict[str, Any]] = collections.defaultdict(lambda: {"n": 0, "closed": 0})
    for items in events.values():
        out = event_outcome([o for _ts, o in items])
        if out == "moot":
            continue
        day = dt.datetime.fromtimestamp(min(ts for ts, _o in items), BEIJING).strftime("%Y-%m-%d")
        by_day[day]["n"] += 1
        by_day[day]["closed"] += out == "done"
    people: dict[str, list[float]] = collections.defaultdict(list)
    for r in records:
        if r["kind"] == "decision" and r["ref"] in proposed:
            people[r.get("user", "?")].append(r["ts"] - proposed[r["ref"]])
    return {
        "days": {d: {**v, "rate": v["closed"] / v["n"]} for d, v in sorted(by_day.items())},
        "people": {p: sorted(v) for p, v in sorted(people.items())},
    }


def review_page(
    lang: str, who: dict, stats: dict[str, Any], k: dict[str, Any], subject: str,
    timeline: list[dict[str, Any]],
) -> str:  # fmt: skip
    p50 = (stats.get("proposal_to_fill_ms") or {}).get("p50")
    figs = (
        f'<div class="figs"><div class="fig"><span>{t(lang, "closed_loop_rate")}</span>'
        f"<b>{percent(stats.get('closed_loop_rate', float('nan')))}</b></div>"
        f'<div class="fig"><span>{t(lang, "proposal_to_fill")} p50</span>'
        f"<b>{'—' if p50 is None else f'{p50:,.0f} ms'}</b></div></div>"
    )
    days = [
        f"<tr><td>{d}</td><td class='num'>{v['n']}</td><td class='num'>{percent(v['rate'])}</td></tr>"
        for d, v in k["days"].items()
    ]
    people = [
        f"<tr><td>{esc(p)}</td><td class='num'>{len(v)}</td>"
        f"<td class='num'>{v[len(v) // 2]:,.1f} s</td></tr>"
        for p, v in k["people"].items()
    ]
    chart = {"days": list(k["days"]), "rate": [v["rate"] for v in k["days"].values()]}
    rows = [
        f"<tr><td>{beijing(r['ts'], millis=True)}</td><td>{esc(r['kind'])}</td>"
        f"<td>{esc(r.get('actor', ''))}</td><td>{esc(r.get('key', ''))}</td>"
        f"<td>{esc(r.get('reason') or r.get('status') or r.get('decision') or r.get('rule_id') or '')}</td></tr>"
        for r in timeline
    ]
    body = (
        f"<h2>{t(lang, 'kpis')}</h2>{figs}"
        f"<div class='chart' id='kpi-chart' data-chart='{esc(json.dumps(chart))}'></div>"
        f"<h3>{t(lang, 'per_day')}</h3>"
        + html_table([t(lang, "time"), t(lang, "pending"), t(lang, "closed_loop_rate")], days)
        + f"<h3>{t(lang, 'per_person')}</h3>"
        + html_table([t(lang, "name"), "n", "p50"], people)
        + f"<h2>{t(lang, 'timeline')} {esc(subject)}</h2>"
        "<form method='get' class='filters'><input name='subject' placeholder='ACC… / alert id' "
        f"value='{esc(subject)}'><button>{t(lang, 'filter')}</button></form>"
        + html_table([t(lang, "time") + " (北京时间)", t(lang, "kind"), "actor", "key", ""], rows)
    )
    return layout(lang, t(lang, "review"), body, who, "review")


def rules_page(lang: str, who: dict, info: dict[str, Any], changes: list[dict]) -> str:
    rows = [f"<tr><td>{esc(r)}</td></tr>" for r in info.get("rules", [])]
    hist = [
        f"<tr><td>{beijing(r['ts'])}</td><td>{esc(r.get('version', r.get('ref', '')))}</td>"
        f"<td>{esc(r.get('by', r.get('user', '')))}</td><td>{esc(r.get('reason', ''))}</td></tr>"
        for r in changes
    ]
    body = (
        f"<p>{t(lang, 'version')}: <code>{esc(info.get('version', ''))}</code></p>"
        + html_table([t(lang, "rules")], rows)
        + f"<h2>{t(lang, 'version')}</h2>"
        + html_table(
            [t(lang, "time") + " (北京时间)", t(lang, "version"), t(lang, "by"), t(lang, "reason")],
            hist,
        )  # fmt: skip
    )
    return layout(lang, t(lang, "rules"), body, who, "rules")


def books_page(lang: str, who: dict, books: dict[str, dict[str, Any]]) -> str:
    rows = []
    for c, b in sorted(books.items()):
        rows.append(
            f"<tr><td>{esc(c)}</td><td class='num'>{b.get('exposure_units', float('nan')):,.0f}</td>"
            f"<td class='num'>{yuan(b.get('exposure_value') or float('nan'))}</td>"
            f"<td class='num'>{b.get('basis', float('nan')):,.2f}</td>"
            f"<td class='num'>{yuan(b.get('var', b.get('var_1d', float('nan'))))}</td>"
            f"<td>{beijing(b.get('updated_ts'))}</td></tr>"
        )
    cols = [t(lang, "commodity"), t(lang, "exposure"), t(lang, "exposure") + " ¥",
            t(lang, "basis"), t(lang, "var"), t(lang, "time") + " (北京时间)"]  # fmt: skip
    return layout(lang, t(lang, "books"), html_table(cols, rows), who, "books")
