#!/usr/bin/env bash
# Latency of a schedule: from a tick of `@every 1s` to the tick's run file
# (created_at - scheduled_at in the run record) and to the task's process
# start, under `ork run`. Prints both, in milliseconds: min, median, p90, max.
# Usage: scripts/bench-schedule.sh path/to/ork [TICKS]
set -euo pipefail
ork=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
ticks=${2:-30}
work=$(mktemp -d)
cd "$work"
"$ork" init >/dev/null
mkdir scripts
# The task records when it started, in nanoseconds.
printf '#!/bin/sh\ndate +%%s%%N > "%s/started.$ORK_RUN_ID"\n' "$work" > scripts/stamp.sh
chmod +x scripts/stamp.sh
echo '{"job_name": "stamp.sh", "schedule": {"cron": "@every 1s", "overlap": "allow"}}' > .ork/workflows/tick.json
"$ork" run 2>"$work/sched.log" &
sched=$!
trap 'kill $sched 2>/dev/null; wait $sched 2>/dev/null; rm -rf "$work"' EXIT
sleep "$((ticks + 1)).5"
kill -INT $sched; wait $sched || true
stats() { sort -n | awk '{a[NR]=$1} END {printf "ticks=%d min=%.1fms median=%.1fms p90=%.1fms max=%.1fms\n", NR, a[1], (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2, a[int(NR*0.9+0.5)], a[NR]}'; }
"$ork" status --workflow tick --limit 0 --json > runs.json
echo -n "tick -> run created: "
jq -r '.[] | select(.triggered_by == "schedule") | [.scheduled_at, .created_at] | @tsv' runs.json |
  while IFS=$'\t' read -r s c; do
    # Both are RFC 3339 in UTC; the tick is a whole second.
    sn=$(date -d "$s" +%s%N); cn=$(date -d "$c" +%s%N)
    echo "scale=3; ($cn - $sn) / 1000000" | bc
  done | stats
echo -n "tick -> task started: "
jq -r '.[] | select(.triggered_by == "schedule") | [.id, .scheduled_at] | @tsv' runs.json |
  while IFS=$'\t' read -r id s; do
    [ -s "started.$id" ] || continue
    sn=$(date -d "$s" +%s%N)
    echo "scale=3; ($(cat "started.$id") - $sn) / 1000000" | bc
  done | stats
