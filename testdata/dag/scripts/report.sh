#!/bin/sh
# Reports which branch ran (the other one was skipped: its output is null).
set -eu
ran=$(printf '%s' "$ORK_UPSTREAM" | grep -o '"branch": *"[^"]*"' | sed 's/.*"\([^"]*\)"$/\1/')
echo "branch that ran: $ran"
printf '{"ran": "%s"}\n' "$ran" > "$ORK_OUTPUT"
