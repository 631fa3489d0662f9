#!/usr/bin/env bash
# Measures ork with cmd/perf-test and writes the results into
# docs/PERFORMANCE.md, between the markers
#   <!-- perf-test results start -->  and  <!-- perf-test results end -->
# with the machine and the exact commands. Everything else in the file is
# kept. Run it from anywhere in the repository, on a quiet machine.
#
# Usage: scripts/perf-results.sh [--dir DIR]... [--repeat N] [--no-bench] [--doc FILE] [--results DIR]
#   --dir DIR    make the ork directories under DIR: the file system is part
#                of what is measured. May be given several times, for one set
#                of tables per directory. Default: ${TMPDIR:-/tmp}.
#   --repeat N   rounds of the short workloads (quick, standard, latency,
#                chain); the round of median total time is reported. Default 3.
#   --no-bench   skip the Go benchmarks (go test -bench) of filedb and sched.
#   --doc FILE   the document to update. Default docs/PERFORMANCE.md.
#   --results DIR  keep the JSON result of every workload in DIR (to compare
#                runs, or to make the tables again with bin/perf-test -markdown).
set -euo pipefail
cd "$(dirname "$0")/.."

repeat=3
bench=1
doc=docs/PERFORMANCE.md
dirs=()
keep=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dirs+=("$2"); shift 2 ;;
    --results) keep=$2; shift 2 ;;
    --repeat) repeat=$2; shift 2 ;;
    --no-bench) bench=0; shift ;;
    --doc) doc=$2; shift 2 ;;
    *) echo "usage: $0 [--dir DIR]... [--repeat N] [--no-bench] [--doc FILE] [--results DIR]" >&2; exit 2 ;;
  esac
done
[ ${#dirs[@]} -gt 0 ] || dirs=("${TMPDIR:-/tmp}")

GO=${GO:-go}
bin=bin/perf-test
start_marker='<!-- perf-test results start -->'
end_marker='<!-- perf-test results end -->'
heavy_limit=3m

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cmds=()
note() { cmds+=("$*"); }

echo "building $bin" >&2
"$GO" build -o "$bin" ./cmd/perf-test
note "$GO build -o $bin ./cmd/perf-test"

# fsinfo DIR: the file system that holds DIR, with its mount options and,
# for ext4, whether it has a journal (it changes the cost of creating
# a file a great deal).
fsinfo() {
  local src fstype opts journal=""
  read -r src fstype opts < <(findmnt -n -o SOURCE,FSTYPE,OPTIONS -T "$1" 2>/dev/null || echo "? ? ?")
  case "$fstype" in
    ext3|ext4)
      # A journalled ext4 shows its data mode (data=ordered, ...).
      local proc="/proc/fs/ext4/$(basename "$src")/options"
      if [ -r "$proc" ]; then
        if grep -q '^data=' "$proc"; then
          journal=", with a journal ($(grep '^data=' "$proc"))"
        else
          journal=", without a journal"
        fi
      fi ;;
  esac
  echo "$fstype$journal (mount options $opts) on $src"
}

section="$work/section.md"
: > "$section"
for dir in "${dirs[@]}"; do
  mkdir -p "$dir"
  results=()
  notes=()
  d="${keep:-$work}/$(echo "$dir" | tr '/' '_')"
  mkdir -p "$d"
  # measure NAME ARGS...: one workload, its JSON result kept for the tables.
  measure() {
    local name=$1; shift
    local cmd=("$bin" "$name" -json -quiet -dir "$dir" "$@")
    echo "running: ${cmd[*]}" >&2
    local t0 t1
    t0=$(date +%s)
    if "${cmd[@]}" > "$d/$name.json" 2> "$d/$name.err"; then
      t1=$(date +%s)
      echo "  done in $((t1 - t0)) s" >&2
      note "${cmd[*]}"
      results+=("$d/$name.json")
      return 0
    fi
    t1=$(date +%s)
    echo "  failed after $((t1 - t0)) s: $(tail -n 3 "$d/$name.err")" >&2
    notes+=("$name failed: $(tail -n 1 "$d/$name.err")")
    return 1
  }
  # The workloads that create and then remove 100,000 files come last: on
  # some file systems the removals slow down file creation for minutes.
  measure quick -repeat "$repeat" || true
  measure standard -repeat "$repeat" || true
  measure latency -repeat "$repeat" || true
  measure chain -repeat "$repeat" || true
  measure idle || true
  # heavy is skipped when it takes longer than $heavy_limit.
  if ! measure heavy -timeout "$heavy_limit"; then
    if grep -q "deadline exceeded" "$d/heavy.err"; then
      unset 'notes[${#notes[@]}-1]'
      notes+=("heavy was skipped: it took more than $heavy_limit here (\`$bin heavy -timeout $heavy_limit\`).")
    fi
  fi
  measure noisy || true
  measure memory || true
  measure scale || true
  {
    [ -s "$section" ] && echo
    echo "### ork directory under $dir"
    echo
    echo "File system: $(fsinfo "$dir")."
    echo
    if [ ${#results[@]} -gt 0 ]; then
      "$bin" -markdown "${results[@]}"
    fi
    if [ ${#notes[@]} -gt 0 ]; then
      echo
      printf -- '- %s\n' "${notes[@]}"
    fi
  } >> "$section"
done

benchout=""
if [ "$bench" = 1 ]; then
  bcmd=("$GO" test -run '^$' -bench . -benchmem -count 1 ./filedb ./sched)
  echo "running: ${bcmd[*]}" >&2
  "${bcmd[@]}" > "$work/bench.txt" 2>&1 || true
  benchout=$(grep -E '^(Benchmark|goos|goarch|cpu|pkg)' "$work/bench.txt" || true)
  if ! grep -q '^Benchmark' "$work/bench.txt"; then
    echo "  the benchmarks failed:" >&2
    tail -n 20 "$work/bench.txt" >&2
    benchout="the benchmarks failed: $(tail -n 3 "$work/bench.txt")"
  fi
  note "${bcmd[*]}   # in ${TMPDIR:-/tmp}: $(fsinfo "${TMPDIR:-/tmp}")"
fi

cpu_model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || true)
{
  echo "$start_marker"
  echo
  echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) CPUs${cpu_model:+ ($cpu_model)},"
  echo "$(free -g | awk '/^Mem:/ {print $2 " GB of memory"}'), kernel $(uname -r), $("$GO" version | awk '{print $3}'),"
  echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' with local changes')."
  echo "The load average at the start of each measurement is in the tables: other"
  echo "work on the machine skews every figure."
  echo
  echo "Commands (from the repository root):"
  echo
  echo '```sh'
  printf '%s\n' "${cmds[@]}"
  echo '```'
  echo
  cat "$section"
  if [ -n "$benchout" ]; then
    echo
    echo "Go benchmarks:"
    echo
    echo '```'
    echo "$benchout"
    echo '```'
  fi
  echo
  echo "$end_marker"
} > "$work/marked.md"

mkdir -p "$(dirname "$doc")"
if [ ! -f "$doc" ]; then
  cat > "$doc" <<'DOC'
# Performance

How fast ork is, measured by `cmd/perf-test` on the workloads in
`perf-configs/`.

## How to reproduce

```sh
make perf                      # the quick workload, a table on the terminal
scripts/perf-results.sh        # every workload; rewrites the results below
```

## Results

DOC
fi
if grep -qF "$start_marker" "$doc" && grep -qF "$end_marker" "$doc"; then
  awk -v s="$start_marker" -v e="$end_marker" -v f="$work/marked.md" '
    $0 == s { while ((getline line < f) > 0) print line; skip = 1; next }
    $0 == e { skip = 0; next }
    !skip { print }
  ' "$doc" > "$work/doc.md"
  cat "$work/doc.md" > "$doc"
else
  { echo; cat "$work/marked.md"; } >> "$doc"
fi
echo "wrote the results into $doc" >&2
