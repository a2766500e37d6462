"""Notification as a pure state machine: alerts in, journal records, posts and timers out.

- `machine.apply(state, input, now) -> Effects` is the one entry (inputs in `inputs`).
- `delivery`: lanes' posts and what each answer leads to (retry, failover, failed).
- `state`: the state and the bookkeeping both share; `lanes`, `breaker`, `ratelimit`,
  `backoff`: the delivery discipline of one channel; `routing` + `rules.escalation`: who is
  reached when; `render`: what they read; `outbox`: what a restart still owes.

No Ray, no I/O, no clock: the Notifier actor (actors/notifier.py) journals the effects, performs
the posts on its threads and feeds the answers back.
"""
