#!/bin/sh
# One processing branch; which one is a parameter of the task.
set -eu
echo "running the $branch branch"
printf '{"branch": "%s"}\n' "$branch" > "$ORK_OUTPUT"
