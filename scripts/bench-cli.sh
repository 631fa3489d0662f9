#!/usr/bin/env bash
# The CLI-level figures of docs/PERFORMANCE.md, each a ratio (or a
# difference) of medians measured in the same run, ork and its baseline
# interleaved sample by sample:
#   start    `ork --version` and `ork trigger` (no scheduler: the run stays
#            pending) against an empty static Go program; STARTS starts of
#            each, each timed on its own
#   chain    a DAG chain of 50 no-op script tasks through `ork trigger
#            --wait` against `sh` running the same 50 scripts one after
#            another; ROUNDS rounds
#   trigger  `ork trigger` in one process -> the task's first instruction
#            under a running `ork run`, against the same CLI started once
#            (`ork --version`) followed by the script run directly; SAMPLES
#            samples
#   xargs    2,000 no-op tasks through `ork trigger --wait` against `xargs
#            -P N` (scripts/bench-xargs.sh)
# Times are taken with bash's $EPOCHREALTIME (no process of its own).
# With KEEP=1 the work directory is kept (and named) rather than removed:
# on ext4 without a journal, files made within a minute or more of many
# deletions cost several times more, so a run right after another's
# cleanup measures that cleanup (docs/PERFORMANCE.md).
# Usage: [KEEP=1] scripts/bench-cli.sh path/to/ork [STARTS] [ROUNDS] [SAMPLES] [XARGS_ROUNDS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ork=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
starts=${2:-300}
rounds=${3:-9}
samples=${4:-60}
xrounds=${5:-5}
work=$(mktemp -d)
sched=
cleanup() {
  [ -z "$sched" ] || { kill "$sched" 2>/dev/null; wait "$sched" 2>/dev/null || true; }
  if [ -n "${KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

# now: microseconds since the epoch, from bash itself.
now() { local t=${EPOCHREALTIME/./}; echo "$t"; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
ms() { awk -v u="$1" 'BEGIN {printf "%.2f", u / 1000}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
# msdiff A B N: (A - B) / N in milliseconds.
msdiff() { awk -v a="$1" -v b="$2" -v n="${3:-1}" 'BEGIN {printf "%.2f", (a - b) / n / 1000}'; }
# sleep a few milliseconds without starting a process: a read that times
# out on a pipe nobody writes to.
mkfifo "$work/never"
exec 9<>"$work/never"
nap() { read -r -t "$1" -u 9 || true; }

echo "host: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) CPUs, kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "ork: $ork ($(stat -c %s "$ork") bytes)"

mkdir -p "$work/empty"
printf 'package main\n\nfunc main() {}\n' > "$work/empty/main.go"
printf 'module empty\n\ngo 1.24\n' > "$work/empty/go.mod"
(cd "$work/empty" && CGO_ENABLED=0 go build -o empty .)

cd "$work"
"$ork" init >/dev/null
mkdir scripts
printf '#!/bin/sh\nexit 0\n' > scripts/noop.sh
# The task's first instruction writes the time it ran.
printf '#!/bin/bash\necho "${EPOCHREALTIME/./}" > "%s/started.${ORK_RUN_ID:-$1}"\n' "$work" > scripts/stamp.sh
chmod +x scripts/noop.sh scripts/stamp.sh
"$ork" create-workflow --name start --job-name noop.sh >/dev/null
"$ork" create-workflow --name stamp --job-name stamp.sh >/dev/null
{
  printf '{"name": "chain", "tasks": {\n'
  for i in $(seq 1 50); do
    dep=""
    [ "$i" -gt 1 ] && dep=", \"depends_on\": [\"t$((i - 1))\"]"
    sep=","
    [ "$i" -eq 50 ] && sep=""
    printf '  "t%d": {"job_name": "noop.sh"%s}%s\n' "$i" "$dep" "$sep"
  done
  printf '}}\n'
} > .ork/workflows/chain.json
for _ in $(seq 1 50); do echo ./scripts/noop.sh; done > chain.sh

# start
names=("/bin/true" "empty Go program" "ork --version" "ork trigger")
cmds=("/bin/true" "$work/empty/empty" "$ork --version" "$ork trigger start")
declare -A st
for _ in $(seq "$starts"); do
  for i in "${!cmds[@]}"; do
    t0=$(now); ${cmds[$i]} >/dev/null 2>&1; t1=$(now)
    st[$i]+="$((t1 - t0)) "
  done
done
echo "start: median of $starts starts each, interleaved"
# shellcheck disable=SC2086
base=$(median ${st[1]})
for i in "${!cmds[@]}"; do
  # shellcheck disable=SC2086
  m=$(median ${st[$i]})
  printf '  %-18s %7s ms  %5sx the empty Go program\n' "${names[$i]}" "$(ms "$m")" "$(ratio "$m" "$base")"
done

# chain
cs=() os=()
for _ in $(seq "$rounds"); do
  t0=$(now); sh chain.sh; t1=$(now)
  cs+=("$((t1 - t0))")
  t0=$(now); "$ork" trigger chain --wait >/dev/null 2>&1; t1=$(now)
  os+=("$((t1 - t0))")
done
mc=$(median "${cs[@]}"); mo=$(median "${os[@]}")
echo "chain of 50 no-op scripts: median of $rounds rounds"
echo "  sh, one after another     $(ms "$mc") ms"
echo "  ork trigger chain --wait  $(ms "$mo") ms  $(ratio "$mo" "$mc")x sh ($(msdiff "$mo" "$mc" 49) ms more per hop)"

# trigger -> task start, under a running `ork run`
"$ork" run 2>"$work/sched.log" &
sched=$!
nap 0.5
bs=() ts=()
for s in $(seq "$samples"); do
  t0=$(now); "$ork" --version >/dev/null; ./scripts/stamp.sh "base$s"; t1=$(<"started.base$s")
  bs+=("$((t1 - t0))")
  nap 0.02
  t0=$(now); id=$("$ork" trigger stamp 2>/dev/null | tail -n 1)
  for _ in $(seq 5000); do [ -s "started.$id" ] && break; nap 0.001; done
  t1=$(<"started.$id")
  ts+=("$((t1 - t0))")
  nap 0.02
done
kill "$sched"; wait "$sched" 2>/dev/null || true; sched=
mb=$(median "${bs[@]}"); mt=$(median "${ts[@]}")
echo "trigger -> the task's first instruction: median of $samples samples"
echo "  ork --version, then the script     $(ms "$mb") ms"
echo "  ork trigger -> task under ork run  $(ms "$mt") ms  ($(msdiff "$mt" "$mb") ms more, $(ratio "$mt" "$mb")x)"

# 2,000 no-op tasks against xargs -P N
echo "2,000 no-op tasks:"
"$here/bench-xargs.sh" "$ork" 2000 "$xrounds" | sed 's/^/  /'
