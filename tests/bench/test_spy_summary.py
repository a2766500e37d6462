"""The profile summary counts busy samples only and names where they went."""

from __future__ import annotations

from benchmarks.spy_summary import summary


def test_blocked_samples_are_left_out_and_shares_are_inclusive(tmp_path):
    raw = tmp_path / "AccountShard.1.txt"
    raw.write_text(
        "Thread.run (threading.py:982);on_prices (actors/account_shard.py:140);"
        "mark (rules/book/book.py:306) 30\n"
        "Thread.run (threading.py:982);on_prices (actors/account_shard.py:140) 10\n"
        "Thread.run (threading.py:982);Condition.wait (threading.py:327) 60\n"
        "garbage line\n"
    )
    lines = summary(raw, 5)
    assert lines[0].startswith("== AccountShard.1: 40 busy samples of 100")
    assert "100.0%  on_prices (account_shard.py)" in lines[1]
    assert "75.0%  mark (book.py)" in lines[2]
    assert not any("Thread.run" in line or "Condition.wait" in line for line in lines)
