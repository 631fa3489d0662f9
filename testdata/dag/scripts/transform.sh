#!/bin/sh
# Upper-cases its shard of the extracted rows (row k goes to shard k % n).
set -eu
raw=$(printf '%s' "$ORK_UPSTREAM" | sed -n 's/.*"path": *"\([^"]*\)".*/\1/p')
out="$(dirname "$raw")/part-$ORK_TASK_INDEX.txt"
awk -v n="$ORK_TASK_COUNT" -v i="$ORK_TASK_INDEX" '(NR % n) == i { print toupper($0) }' "$raw" > "$out"
rows=$(wc -l < "$out" | tr -d ' ')
echo "shard $ORK_TASK_INDEX: $rows rows to $out"
printf '{"path": "%s", "rows": %s}\n' "$out" "$rows" > "$ORK_OUTPUT"
