"""A page: the unit that escalates and is acknowledged — one alert, or a digest of many.

It remembers the chain it started with (the steps are journaled with it, so a restart follows
the same plan even if the config changed), which steps have fired and who acknowledged it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from rules.escalation import Step


@dataclass
class Page:
    page_id: str
    alert_ids: list[str]
    severity: str
    chain: str
    steps: tuple[Step, ...]
    started: float
    created_ts: float
    title: str
    text: str
    markdown: str
    fields: dict[str, Any]
    dimension: str = "account"
    key: str = ""
    fired: set[int] = field(default_factory=set)
    acked: dict[str, Any] | None = None
    first_delivery_ts: float | None = None
    delivered: int = 0

    def opened_record(self) -> dict[str, Any]:
        return {
            "kind": "escalation.opened",
            "actor": "Notifier",
            "key": self.chain,
            "ref": self.page_id,
            "alert_ids": self.alert_ids,
            "severity": self.severity,
            "started": self.started,
            "created_ts": self.created_ts,
            "title": self.title,
            "text": self.text,
            "markdown": self.markdown,
            "fields": self.fields,
            "dimension": self.dimension,
            "alert_key": self.key,
            "steps": [asdict(s) for s in self.steps],
        }

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> Page:
        return cls(
            page_id=rec["ref"],
            alert_ids=list(rec["alert_ids"]),
            severity=rec["severity"],
            chain=rec["key"],
            steps=tuple(Step(**s) for s in rec["steps"]),
            started=float(rec["started"]),
            created_ts=float(rec["created_ts"]),
            title=rec["title"],
            text=rec["text"],
            markdown=rec["markdown"],
            fields=dict(rec.get("fields") or {}),
            dimension=rec.get("dimension", "account"),
            key=rec.get("alert_key", ""),
        )

    def summary(self) -> dict[str, Any]:
        """What GET /alerts shows of a page."""
        return {
            "page_id": self.page_id,
            "alert_ids": self.alert_ids,
            "severity": self.severity,
            "title": self.title,
            "chain": self.chain,
            "started": self.started,
            "steps_fired": sorted(self.fired),
            "steps_total": len(self.steps),
            "delivered": self.delivered,
            "state": "acked" if self.acked else "open",
            "acked_by": (self.acked or {}).get("by"),
            "acked_via": (self.acked or {}).get("via"),
            "acked_ts": (self.acked or {}).get("ts"),
        }
