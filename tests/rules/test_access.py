"""Roles, permissions, lockout and session policy of the console (pure)."""

from rules.access import (
    ROLES,
    LockoutPolicy,
    SessionPolicy,
    allowed,
    four_eyes,
    needs_second_factor,
    refusal,
    valid_role,
)


def test_each_role_may_do_what_it_should_and_no_more():
    assert all(allowed(r, "view") for r in ROLES)
    assert not allowed("viewer", "ack") and allowed("risk_officer", "ack")
    assert not allowed("risk_officer", "approve") and allowed("approver", "approve")
    assert refusal("viewer", "approve") == "FORBIDDEN_ROLE: role 'viewer' may not approve"
    assert refusal("approver", "people_admin").startswith("FORBIDDEN_ROLE")
    assert refusal("admin", "people_admin") is None
    assert refusal("admin", "dance").startswith("UNKNOWN_ACTION")
    assert valid_role("approver") is None and "one of" in valid_role("boss")


def test_lockout_after_five_failures_inside_the_window_then_it_ends():
    p = LockoutPolicy(max_failures=5, window_s=60, lock_s=30)
    assert p.locked_until([1, 2, 3, 4], 5) == 0.0
    assert p.locked_until([1, 2, 3, 4, 5], 6) == 35
    assert p.locked_until([1, 2, 3, 4, 5], 36) == 0.0  # the lock has run out
    assert p.locked_until([-100, 2, 3, 4, 5], 6) == 0.0  # one failure fell out of the window
    assert p.keep([-100, 50], 60) == [50]


def test_sessions_expire_idle_or_old_and_four_eyes_and_totp():
    s = SessionPolicy(idle_s=10, max_s=100)
    assert s.expired(0, 95, 99) is None
    assert s.expired(0, 80, 99).startswith("SESSION_EXPIRED: idle")
    assert s.expired(0, 100, 101).startswith("SESSION_EXPIRED: older")
    assert four_eyes("li", "li").startswith("FOUR_EYES") and four_eyes("li", "wang") is None
    assert four_eyes("", "wang") is None
    assert needs_second_factor("approver", True) and not needs_second_factor("viewer", True)
    assert not needs_second_factor("approver", False)
