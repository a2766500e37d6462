"""Every rule kind, one module each; `KINDS` is the registry loaders and engines look up."""

from __future__ import annotations

from rules.engine.kinds.adaptive import FundFlowAnomalyKind, OrderBehaviourAnomalyKind
from rules.engine.kinds.anomaly import AnomalyKind
from rules.engine.kinds.behaviour import BehaviourKind
from rules.engine.kinds.change import ChangeKind
from rules.engine.kinds.composite import CompositeKind
from rules.engine.kinds.fundflow import FundFlowKind
from rules.engine.kinds.market import MARKET_KIND_LIST
from rules.engine.kinds.session import SessionKind
from rules.engine.kinds.threshold import ThresholdKind
from rules.engine.template import RuleKind

KINDS: dict[str, RuleKind] = {
    k.name: k
    for k in (
        ThresholdKind(),
        ChangeKind(),
        SessionKind(),
        BehaviourKind(),
        FundFlowKind(),
        FundFlowAnomalyKind(),
        OrderBehaviourAnomalyKind(),
        AnomalyKind(),
        *MARKET_KIND_LIST,
        CompositeKind(),
    )
}


def kind_of(name: str) -> RuleKind:
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"kind: {name!r} is not one of {sorted(KINDS)}") from None
