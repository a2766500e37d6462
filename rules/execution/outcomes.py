"""How a proposal ended and what the closed-loop rate (闭环处置率) counts — one definition for the
live gauge (the Executor's `fengkong_closed_loop_rate`) and the journal's KPI report
(infra.reports.kpi), so the dashboard and the report a risk department sends upward agree.

- a proposal's outcome: its closed state (`done`, `moot`, `failed`, `rejected`), `expired` told
  apart from a rejection by a person (a `rejected` close whose reason is EXPIRED), `open` while
  not closed;
- an event (an alert with its proposals, or one proposal made by hand) is `done` only when one of
  its proposals executed and verified and none failed or expired; `moot` when every proposal was
  moot (the account no longer breached when the action would run: nothing needed doing);
- the rate: `done` events over events that needed action (all but the moot ones). Open events
  count against it until they close: an action not yet taken is not a closed loop.

Pure: stdlib only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

OUTCOMES = ("done", "moot", "failed", "expired", "rejected", "open")


def proposal_outcome(state: str | None, reason: str = "") -> str:
    """One proposal's outcome from its closed state and reason (`None`: not closed yet)."""
    if state is None:
        return "open"
    if state == "rejected" and reason.startswith("EXPIRED"):
        return "expired"
    return state


def event_outcome(outs: Sequence[str]) -> str:
    """One event's outcome from its proposals': done only if executed and verified."""
    if "open" in outs:
        return "open"
    for bad in ("failed", "expired"):
        if bad in outs:
            return bad
    if "done" in outs:
        return "done"
    return "moot" if all(o == "moot" for o in outs) else "rejected"


def closed_loop_rate(event_outcomes: Iterable[str]) -> float | None:
    """Executed-and-verified events over events that needed action; None when none did."""
    done = needed = 0
    for out in event_outcomes:
        if out == "moot":
            continue
        needed += 1
        done += out == "done"
    return done / needed if needed else None
