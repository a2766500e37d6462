"""Typed journal records: one definition per record kind (its fields and version), one registry.

The journal stores plain dicts (`infra.audit`: kind, actor, key, ref, ts and a JSON payload). Every
writer builds them here (`SomeRecord(...).to_record()`) and every reader turns them back into the
same type (`parse(rec)` or `SomeRecord.from_record(rec)`), so a field is named in one place and
a rename cannot leave a reader behind. A record carries its schema version in the payload as
`v`; `from_record` reads older versions (missing fields take their defaults) and ignores keys it
does not know (the journal's own `seq`, fields a newer writer added).

Kinds of other actors (alerts, risk events, the Notifier's notification.* and escalation.* in
`notify`) register here too: `register` is a
class decorator; `KINDS` lists every registered kind; `parse` raises `UnknownRecordKind` for a
kind nobody registered, so a typo in a reader is an error, not an empty answer.
"""

from __future__ import annotations

from rules.journal_records.base import (
    ENVELOPE,
    REGISTRY,
    JournalRecord,
    UnknownRecordKind,
    kind_of,
    kinds,
    parse,
    register,
)
from rules.journal_records.closed_loop import (
    AccountMark,
    ApprovalEscalated,
    DecisionRecord,
    MarginCallRecord,
    OrderCancel,
    OrderReport,
    OrderSent,
    PlanRecord,
    ProposalClosed,
    ProposalRecord,
    Refusal,
    TradingState,
)
from rules.journal_records.notify import NotifyRecord
from rules.journal_records.observed import (
    AdaptiveState,
    AlertAcked,
    AlertRecord,
    RiskEventRecord,
    Trade,
)

__all__ = [
    "ENVELOPE",
    "KINDS",
    "REGISTRY",
    "AccountMark",
    "AdaptiveState",
    "AlertAcked",
    "AlertRecord",
    "ApprovalEscalated",
    "DecisionRecord",
    "JournalRecord",
    "MarginCallRecord",
    "NotifyRecord",
    "OrderCancel",
    "OrderReport",
    "OrderSent",
    "PlanRecord",
    "ProposalClosed",
    "ProposalRecord",
    "Refusal",
    "RiskEventRecord",
    "Trade",
    "TradingState",
    "UnknownRecordKind",
    "kind_of",
    "kinds",
    "parse",
    "register",
]

KINDS: tuple[str, ...] = kinds()  # the kinds defined in this package
