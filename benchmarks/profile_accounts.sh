#!/bin/bash
# py-spy profile of every actor of one accounts run (issue 17): `benchmarks/profile_accounts.sh
# [ACCOUNTS] [OUT_DIR]` runs run_loop(accounts=ACCOUNTS, 400 contracts, 10 positions, 100k
# ticks/s, 30 s), waits for the load phase (the feed gets busy once every account is loaded),
# records each `ray::` process and the driver for 10 s at 100 Hz, then prints a summary
# (benchmarks/spy_summary.py). Needs py-spy (`.venv/bin/pip install py-spy`) and root.
set -e
N=${1:-100000}
O=${2:-var/profile-$N}
PY=${PY:-.venv/bin/python}
SPY=${SPY:-.venv/bin/py-spy}
[ -x "$SPY" ] || { echo "profile: py-spy not found at $SPY (.venv/bin/pip install py-spy)"; exit 2; }
while pgrep -f "ray::MarketFeed" > /dev/null; do sleep 0.5; done  # no feed of an earlier run
mkdir -p "$O"; rm -f "$O"/*.txt
PYTHONPATH=. "$PY" -c "
import json
from benchmarks.common import run_loop
print(json.dumps(run_loop(accounts=$N, contracts=400, positions=10, rate=100_000, duration_s=30)))
" > "$O/run.json" 2> "$O/run.err" &
RUN=$!
FEED=""
for _ in $(seq 1 400); do FEED=$(pgrep -n -f "ray::MarketFeed" || true); [ -n "$FEED" ] && break; sleep 0.5; done
prev=$(awk '{print $14+$15}' "/proc/$FEED/stat")
for _ in $(seq 1 300); do  # the load phase: the feed uses > 25% of a core
  [ -r "/proc/$FEED/stat" ] || break
  sleep 1; now=$(awk '{print $14+$15}' "/proc/$FEED/stat"); d=$((now - prev)); prev=$now
  [ "$d" -gt 25 ] && break
done
sleep 5
for name in AccountShard MarketFeed Correlator AuditLog Notifier Executor; do
  for P in $(pgrep -f "ray::$name"); do
    "$SPY" record -p "$P" -d 10 -r 100 -f raw --nonblocking -o "$O/$name.$P.txt" > /dev/null 2>&1 &
  done
done
wait $RUN
wait
"$PY" benchmarks/spy_summary.py "$O" 25
