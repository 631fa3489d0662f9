#!/usr/bin/env bash
# 2,000 tasks of a script that exits 0, through `ork trigger --wait`,
# against `xargs -P N` running the same script 2,000 times with the same
# parallelism N (ork's default max running tasks: 4 x CPUs). Runs both
# ROUNDS times, alternating, and prints the medians and their ratio.
# With KEEP=1 the work directory is kept (see scripts/bench-cli.sh).
# Usage: [KEEP=1] scripts/bench-xargs.sh path/to/ork [TASKS] [ROUNDS]
set -euo pipefail
ork=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
tasks=${2:-2000}
rounds=${3:-5}
n=$((4 * $(nproc)))
work=$(mktemp -d)
trap 'if [ -n "${KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi' EXIT
cd "$work"
"$ork" init >/dev/null
mkdir scripts
printf '#!/bin/sh\nexit 0\n' > scripts/noop.sh
chmod +x scripts/noop.sh
"$ork" create-workflow --name bulk --job-name noop.sh --task-count "$tasks" >/dev/null

now() { date +%s.%N; }
xs=() os=()
for _ in $(seq "$rounds"); do
  t0=$(now); seq "$tasks" | xargs -P "$n" -n 1 ./scripts/noop.sh; t1=$(now)
  xs+=("$(echo "$t1 - $t0" | bc)")
  t0=$(now); "$ork" trigger bulk --wait >/dev/null 2>&1; t1=$(now)
  os+=("$(echo "$t1 - $t0" | bc)")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
mx=$(median "${xs[@]}"); mo=$(median "${os[@]}")
echo "tasks=$tasks parallelism=$n rounds=$rounds"
echo "xargs -P $n: ${xs[*]} s (median $mx s)"
echo "ork trigger --wait: ${os[*]} s (median $mo s)"
echo "ratio ork/xargs (medians): $(echo "scale=2; $mo / $mx" | bc)"
