#!/bin/sh
# The quality check: reports the quality it was given as a parameter.
set -eu
echo "quality is $quality"
printf '{"quality": "%s"}\n' "$quality" > "$ORK_OUTPUT"
