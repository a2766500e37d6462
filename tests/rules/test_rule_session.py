"""Session-restricted rules: labels from the calendar, cached per minute, and every account
judged when a session opens."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from infra.specs import load_contract_table
from rules.engine.evaluator import RuleEngine
from rules.engine.kinds.session import SessionGate
from rules.engine.spec import RuleSpec
from rules.sessions import BEIJING, SessionCalendar, label_mask


@pytest.fixture(scope="module")
def calendar():
    return SessionCalendar.from_table(load_contract_table())


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=BEIJING).timestamp()


def test_minute_cache_matches_the_calendar_every_second(calendar):
    gate = SessionGate(calendar)
    start = at("2026-01-05T14:50:00")
    for s in range(0, 20 * 60, 7):
        per_template = calendar.template_states(start + s)[3]
        union = 0
        for b in per_template:
            union |= int(b)
        assert gate.bits(start + s + 0.4) == union


def test_labels(calendar):
    gate = SessionGate(calendar)
    assert gate.active(("close",), at("2026-01-05T14:57:00"))
    assert not gate.active(("close",), at("2026-01-05T14:50:00"))
    assert gate.active(("night",), at("2026-01-05T21:30:00"))
    assert not gate.active(("night", "day"), at("2026-01-05T16:00:00"))
    assert gate.active((), at("2026-01-05T16:00:00"))  # no restriction
    assert label_mask(["pre_open"])
    shifted = SessionGate(calendar, shift_s=at("2026-01-05T21:30:00") - at("2026-01-05T16:00:00"))
    assert shifted.active(("night",), at("2026-01-05T16:00:00"))


def test_outside_its_session_a_rule_waits_and_judges_everyone_at_the_opening(calendar):
    rule = RuleSpec(id="close70", kind="session", sessions=("close",), threshold=0.7, rearm=0.65)
    engine = RuleEngine([rule], SessionGate(calendar))
    values = np.array([0.75, 0.72, 0.4])
    everyone = np.arange(3)

    def run(ts: float, rows: np.ndarray) -> list[int]:
        got = engine.evaluate(lambda m, r: values[r], rows, ts, universe=lambda: everyone)
        return sorted(int(r) for f in got for r in f.rows)

    assert run(at("2026-01-05T14:50:00"), everyone) == []  # before the close: not evaluated
    assert run(at("2026-01-05T14:54:00"), np.array([2])) == []
    # 14:55 opens "close": every account is judged, not just the re-marked one
    assert run(at("2026-01-05T14:55:00.5"), np.array([2])) == [0, 1]
    assert run(at("2026-01-05T14:56:00"), everyone) == []
