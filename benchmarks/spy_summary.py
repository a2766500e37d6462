"""Summarise py-spy raw profiles (`py-spy record -f raw`): per process, its samples (at 100 Hz
over 10 s, samples / 10 ≈ percent of a core) and the functions with the largest inclusive share,
blocked threads left out (waits on conditions, ZeroMQ polls, Ray's main loop), so what remains
is where the CPU went. `python benchmarks/spy_summary.py DIR [TOP]`."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

BLOCKED = ("Condition.wait", "Event.wait", "Poller.poll", "Worker.main_loop", "select")
# frames every stack passes through (threads, Ray's task wrappers): they say nothing
PLUMBING = ("Thread.", "_bootstrap", "_resume_span", "default_worker", "function_manager",
            "_guarded", "every.<locals>", "_WorkItem", "_worker (thread")  # fmt: skip


def _frame(raw: str) -> str:
    name, _, where = raw.partition(" (")
    return f"{name} ({where.split(':')[0].rsplit('/', 1)[-1]})" if where else name


def summary(path: Path, top: int) -> list[str]:
    incl: Counter[str] = Counter()
    total = busy = 0
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():  # not a py-spy raw line
            continue
        n = int(count)
        total += n
        frames = [_frame(f) for f in stack.split(";")]
        if any(b in frames[-1] for b in BLOCKED):
            continue
        busy += n
        for f in set(frames):
            if not any(p in f for p in PLUMBING):
                incl[f] += n
    out = [f"== {path.stem}: {busy} busy samples of {total} (≈ {busy / 10:.0f}% of a core)"]
    for f, n in incl.most_common(top):
        out.append(f"   {n / max(1, busy):6.1%}  {f[:110]}")
    return out


def main(argv: list[str]) -> int:
    folder, top = Path(argv[1]), int(argv[2]) if len(argv) > 2 else 20
    for path in sorted(folder.glob("*.txt")):
        print("\n".join(summary(path, top)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
