#!/bin/sh
# Adds up the partial sums of every partition (ORK_UPSTREAM.partition is an
# array of their outputs).
set -eu
total=$(printf '%s' "$ORK_UPSTREAM" | grep -o '"sum": *[0-9]*' | awk -F: '{s += $2} END {print s}')
parts=$(printf '%s' "$ORK_UPSTREAM" | grep -o '"sum"' | wc -l | tr -d ' ')
echo "combined $parts partitions: total $total"
printf '{"partitions": %s, "total": %s}\n' "$parts" "$total" > "$ORK_OUTPUT"
