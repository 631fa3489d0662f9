#!/bin/sh
# Sums its share of 1..$numbers: partition i of n takes the numbers k with
# k % n == i.
set -eu
sum=0
k=1
while [ "$k" -le "$numbers" ]; do
  if [ $((k % ORK_TASK_COUNT)) -eq "$ORK_TASK_INDEX" ]; then sum=$((sum + k)); fi
  k=$((k + 1))
done
echo "partition $ORK_TASK_INDEX: sum $sum"
printf '{"partition": %s, "sum": %s}\n' "$ORK_TASK_INDEX" "$sum" > "$ORK_OUTPUT"
