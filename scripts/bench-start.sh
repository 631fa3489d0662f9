#!/usr/bin/env bash
# The start of the CLI against an empty Go program, side by side: each
# command is run N times in a row, in R interleaved rounds, each start
# timed on its own (bash's $EPOCHREALTIME), and the median of all N x R
# starts is reported with its ratio to the empty program's.
# Usage: scripts/bench-start.sh [N] [R] [ORK...]
#   ORK: ork binaries to compare (default: bin/ork, built by make build).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100}
rounds=${2:-7}
shift $(( $# > 2 ? 2 : $# ))
orks=("$@")
[ ${#orks[@]} -gt 0 ] || { make -s build; orks=(bin/ork); }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf 'package main\n\nfunc main() {}\n' > "$work/main.go"
printf 'module empty\n\ngo 1.24\n' > "$work/go.mod"
(cd "$work" && CGO_ENABLED=0 go build -o empty .) || exit 1
for i in "${!orks[@]}"; do orks[$i]=$(cd "$(dirname "${orks[$i]}")" && pwd)/$(basename "${orks[$i]}"); done
# A project with a one-task workflow to trigger (only the trigger is timed:
# no scheduler runs, the runs stay pending).
cd "$work"
"${orks[0]}" init >/dev/null
mkdir -p scripts
printf '#!/bin/sh\n' > scripts/noop.sh
chmod +x scripts/noop.sh
"${orks[0]}" create-workflow --name start --job-name noop.sh >/dev/null

names=("/bin/true" "empty Go program")
cmds=("/bin/true" "$work/empty")
for o in "${orks[@]}"; do
  names+=("$o --version" "$o trigger start")
  cmds+=("$o --version" "$o trigger start")
done
declare -A per
for r in $(seq "$rounds"); do
  for i in "${!cmds[@]}"; do
    for _ in $(seq "$n"); do
      s=${EPOCHREALTIME/./}
      ${cmds[$i]} >/dev/null 2>&1
      e=${EPOCHREALTIME/./}
      per[$i]+="$((e - s)) "
    done
  done
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
base=$(echo "${per[1]}" | median)
echo "host: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "median of $((rounds * n)) starts each ($rounds interleaved rounds of $n):"
for i in "${!cmds[@]}"; do
  m=$(echo "${per[$i]}" | median)
  printf '  %-50s %7.2f ms  %5.2fx the empty Go program\n' "${names[$i]}" "$(echo "$m/1000" | bc -l)" "$(echo "$m/$base" | bc -l)"
done
