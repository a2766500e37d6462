"""session: a rule active only in named sessions (pre_open, open, close, night, day).

Any keyed rule may carry `sessions = [...]`; kind "session" is a threshold rule that must name
them (a margin rule for the night only, a tighter risk-degree line in the last five minutes of
the day). Outside its sessions a rule is not evaluated and keeps its arming state, so the first
evaluation inside sees the crossing. Labels come from rules.sessions: the union of what the
exchanges' schedules say at that moment (an account's contracts trade on several schedules).
"""

from __future__ import annotations

from rules.engine.kinds.threshold import ThresholdKind
from rules.engine.spec import RuleSpec
from rules.sessions import LABEL_BITS, SessionCalendar, label_mask

ALL_BITS = sum(LABEL_BITS.values())


class SessionKind(ThresholdKind):
    name = "session"

    def check(self, spec: RuleSpec, metrics: tuple[str, ...] | list[str]) -> None:
        super().check(spec, metrics)
        if not spec.sessions:
            raise ValueError("sessions: kind 'session' must name at least one session")


class SessionGate:
    """Which session labels hold at a moment (cached per second), from a calendar.

    `shift_s` moves the clock (demos and tests outside trading hours run on a shifted session
    clock, as the market feed does). Without a calendar every label holds.
    """

    def __init__(self, calendar: SessionCalendar | None = None, shift_s: float = 0.0) -> None:
        self.calendar = calendar
        self.shift_s = shift_s
        self._minute: int | None = None
        self._bits = ALL_BITS

    def bits(self, ts: float) -> int:
        """Labels at `ts`. Sessions start and end on whole minutes (and the labels' edges are
        five minutes), so the labels hold for the whole minute: cached per minute."""
        if self.calendar is None:
            return ALL_BITS
        minute = int((ts + self.shift_s) // 60)
        if minute != self._minute:
            per_template = self.calendar.template_states(float(minute * 60))[3]
            self._bits = _union(per_template)
            self._minute = minute
        return self._bits

    def active(self, sessions: tuple[str, ...], ts: float) -> bool:
        return not sessions or bool(label_mask(sessions) & self.bits(ts))


def _union(bits: object) -> int:
    out = 0
    for b in bits:  # type: ignore[attr-defined]
        out |= int(b)
    return out
