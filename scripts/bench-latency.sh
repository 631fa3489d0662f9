#!/usr/bin/env bash
# Latency from `ork trigger` (its process start, in one process) to the
# task's process start under `ork run` (in another). Prints every sample
# in milliseconds and the median.
# Usage: scripts/bench-latency.sh path/to/ork [SAMPLES]
set -euo pipefail
ork=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
samples=${2:-30}
work=$(mktemp -d)
cd "$work"
"$ork" init >/dev/null
mkdir scripts
# The task records when it started, in nanoseconds.
printf '#!/bin/sh\ndate +%%s%%N > "%s/started.$ORK_RUN_ID"\n' "$work" > scripts/stamp.sh
chmod +x scripts/stamp.sh
"$ork" create-workflow --name stamp --job-name stamp.sh >/dev/null
"$ork" run 2>"$work/sched.log" &
sched=$!
trap 'kill $sched 2>/dev/null; wait $sched 2>/dev/null; rm -rf "$work"' EXIT
sleep 0.5
lat=()
for _ in $(seq "$samples"); do
  t0=$(date +%s%N)
  id=$("$ork" trigger stamp | tail -n 1)
  for _ in $(seq 500); do [ -s "started.$id" ] && break; sleep 0.01; done
  t1=$(cat "started.$id")
  lat+=("$(( (t1 - t0) / 1000 ))")
  sleep 0.05
done
printf '%s\n' "${lat[@]}" | sort -n | awk '{a[NR]=$1/1000} END {printf "samples=%d min=%.1fms median=%.1fms p90=%.1fms max=%.1fms\n", NR, a[1], (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2, a[int(NR*0.9+0.5)], a[NR]}'
