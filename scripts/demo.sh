#!/usr/bin/env bash
# make demo: runs the demo workflow of testdata/demo end to end with a real
# ork binary, in a temporary directory, and prints what happened.
set -euo pipefail
ork=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
src=$(cd "$(dirname "$0")/../testdata/demo" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
mkdir -p tmp && export TMPDIR="$work/tmp" # the pipeline example writes its data there

step() { printf '\n\033[1m$ %s\033[0m\n' "$*" >&2; "$@"; }

step "$ork" init
cp -r "$src/scripts" scripts
mkdir -p .ork/workflows && cp "$src/greet.json" .ork/workflows/greet.json
echo "(wrote .ork/workflows/greet.json by hand and scripts/greet.sh)"
step "$ork" validate .ork/workflows/greet.json
step "$ork" create-workflow --name hello --job-name greet.sh --task-count 2 --description "made with create-workflow"
step "$ork" list-workflows
run=$(step "$ork" trigger greet --param WHO=world --wait | tail -n 1)
step "$ork" status
step "$ork" status "$run"
step "$ork" tasks "$run"
printf '\n\033[1mlog of task 1:\033[0m\n'
cat .ork/logs/"$run"/greet.sh.1.1.log

# A DAG: extract -> transform (4 shards) -> load, passing data by outputs.
cp "$src/../dag/scripts/"*.sh scripts/
cp "$src/../dag/data_pipeline.json" .ork/workflows/
dag=$(step "$ork" trigger data_pipeline --wait | tail -n 1)
step "$ork" tasks "$dag"
step "$ork" logs "$dag" load
printf '\nDemo finished: runs %s and %s succeeded.\n' "$run" "$dag"
