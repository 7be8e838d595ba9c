#!/usr/bin/env bash
# The figures of docs/scaling.md: the demo shop at CUSTOMERS customers, all 20 demo
# segments counted in process (with and without a memory limit) and on a Ballista
# cluster of one scheduler and two executor processes on this machine.
#
#   scripts/scale.sh SEGQL CUSTOMERS [DIR]
#
# SEGQL is a release build with `--features ballista`. DIR (default /tmp/segql-scale-N)
# keeps the generated data. Prints wall time and peak memory of each step, and checks
# that the cluster's counts are the in-process counts.
set -euo pipefail
cd "$(dirname "$0")/.."

segql="$1"
customers="$2"
dir="${3:-/tmp/segql-scale-$customers}"
measure() { /usr/bin/time -f "%e s, peak %M KB" "$@"; }

if [[ ! -f "$dir/segql.toml" ]]; then
    echo "== generating $customers customers in $dir"
    measure "$segql" demo --customers "$customers" --out "$dir"
fi
du -sh "$dir"

echo "== in process, 20 segments (3 runs)"
for _ in 1 2 3; do measure "$segql" count "$dir/segments.seg" >"$dir/local-counts.txt"; done
echo "== in process, --memory-limit 1GB"
measure "$segql" count "$dir/segments.seg" --memory-limit 1GB >/dev/null ||
    echo "(stopped with E0408: 1GB is not enough at this scale)"

echo "== Ballista: a scheduler and two executors (one task slot each)"
port=50160
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
"$segql" cluster scheduler --port "$port" 2>/dev/null &
pids+=($!)
for i in 1 2; do
    "$segql" cluster executor --scheduler "127.0.0.1:$port" --port $((port + 2 * i - 1)) \
        --grpc-port $((port + 2 * i)) --slots 1 --work-dir "$(mktemp -d)" 2>/dev/null &
    pids+=($!)
done
sleep 5
for _ in 1 2; do
    measure "$segql" count "$dir/segments.seg" --engine "ballista://127.0.0.1:$port" >"$dir/cluster-counts.txt"
done
for pid in "${pids[@]:1}"; do
    echo "executor $pid peak: $(grep VmHWM "/proc/$pid/status" | awk '{print $2, $3}')"
done
cmp "$dir/local-counts.txt" "$dir/cluster-counts.txt" && echo "the cluster's counts are the in-process counts"
