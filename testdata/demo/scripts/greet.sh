#!/bin/sh
# One task of the demo workflow: picks a greeting by ORK_TASK_INDEX.
set -eu
case "$ORK_TASK_INDEX" in
  0) word="Hello" ;;
  1) word="Bonjour" ;;
  2) word="Hola" ;;
  *) word="Hallo" ;;
esac
echo "task $ORK_TASK_INDEX of $ORK_TASK_COUNT (attempt $ORK_ATTEMPT) of run $ORK_RUN_ID"
echo "$word, $WHO! ($(printf '%s' "$word" | wc -c) letters)"
