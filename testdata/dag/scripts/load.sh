#!/bin/sh
# Loads every transformed shard into the target table (a file here).
set -eu
dir=""
: > "${TMPDIR:-/tmp}/ork-pipeline-$ORK_RUN_ID/$target.txt"
for p in $(printf '%s' "$ORK_UPSTREAM" | grep -o '"path": *"[^"]*"' | sed 's/.*"\([^"]*\)"$/\1/'); do
  dir=$(dirname "$p")
  cat "$p" >> "$dir/$target.txt"
done
rows=$(wc -l < "$dir/$target.txt" | tr -d ' ')
echo "loaded $rows rows into $target"
printf '{"target": "%s", "rows": %s, "path": "%s"}\n' "$target" "$rows" "$dir/$target.txt" > "$ORK_OUTPUT"
