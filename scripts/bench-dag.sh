#!/usr/bin/env bash
# DAG overheads with a real ork binary: a chain of N tasks (each depends on
# the one before) of a script that exits 0, through `ork trigger --wait`.
# Prints the hop latency (upstream finished -> downstream started, from the
# task records) and the run's total time minus the scripts' own run time.
# Usage: scripts/bench-dag.sh path/to/ork [N] [ROUNDS]
set -euo pipefail
ork=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
n=${2:-50}
rounds=${3:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
"$ork" init >/dev/null
mkdir scripts
printf '#!/bin/sh\nexit 0\n' > scripts/noop.sh
chmod +x scripts/noop.sh
{
  printf '{"name": "chain", "tasks": {\n'
  for i in $(seq 1 "$n"); do
    dep=""
    [ "$i" -gt 1 ] && dep=", \"depends_on\": [\"t$((i - 1))\"]"
    sep=","
    [ "$i" -eq "$n" ] && sep=""
    printf '  "t%d": {"job_name": "noop.sh"%s}%s\n' "$i" "$dep" "$sep"
  done
  printf '}}\n'
} > .ork/workflows/chain.json
"$ork" validate .ork/workflows/chain.json >/dev/null
for r in $(seq "$rounds"); do
  t0=$(date +%s%N)
  id=$("$ork" trigger chain --wait 2>/dev/null | tail -n 1)
  t1=$(date +%s%N)
  # started_at / finished_at of every task, in order of the chain.
  "$ork" tasks "$id" --json | awk -v n="$n" -v wall=$(( (t1 - t0) / 1000 )) '
    function ts(s,   d, t, frac) {  # RFC 3339 UTC -> microseconds of the day
      split(s, d, "T"); split(d[2], t, ":"); frac = t[3]; sub(/Z$/, "", frac)
      return ((t[1] * 60 + t[2]) * 60 + frac) * 1000000
    }
    /"name":/ { gsub(/[",]/, "", $2); name = $2 }
    /"started_at":/ { gsub(/[",]/, "", $2); st[name] = ts($2) }
    /"finished_at":/ { gsub(/[",]/, "", $2); fi[name] = ts($2) }
    END {
      run = 0; k = 0
      for (i = 1; i <= n; i++) { run += fi["t" i] - st["t" i] }
      for (i = 2; i <= n; i++) { h[k++] = st["t" i] - fi["t" (i - 1)] }
      asort(h)
      printf "chain of %d: wall %.0f ms, scripts ran %.0f ms, overhead %.0f ms; hop p50 %.1f ms, p90 %.1f ms, max %.1f ms\n",
        n, wall / 1000, run / 1000, (wall - run) / 1000, h[int(k / 2) + 1] / 1000, h[int(k * 0.9) + 1] / 1000, h[k] / 1000
    }'
done
