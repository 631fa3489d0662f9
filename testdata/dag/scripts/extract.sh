#!/bin/sh
# Writes $rows rows of raw data into a work directory of the run and passes
# its path on.
set -eu
dir="${TMPDIR:-/tmp}/ork-pipeline-$ORK_RUN_ID"
mkdir -p "$dir"
seq 1 "$rows" | sed 's/^/row /' > "$dir/raw.txt"
echo "extracted $rows rows to $dir/raw.txt"
printf '{"path": "%s", "rows": %s}\n' "$dir/raw.txt" "$rows" > "$ORK_OUTPUT"
