#!/usr/bin/env bash
# Runs every demo segment on a real Ballista cluster on loopback — one scheduler and two
# executor processes, started with `segql cluster` — and checks that each segment's members
# and the one-pass counts are exactly what `segql` finds in process.
#
#   scripts/ballista_cluster.sh [SEGQL]
#
# SEGQL is a segql binary built with `--features ballista` (default: the debug build in
# $CARGO_TARGET_DIR or target/). Ports 50150-50154 must be free. Exits non-zero on any
# difference; the nodes' logs are printed when something fails.
set -euo pipefail
cd "$(dirname "$0")/.."

segql="${1:-${CARGO_TARGET_DIR:-target}/debug/segql}"
if [[ ! -x "$segql" ]]; then
    echo "error: no segql binary at $segql; build one with \`cargo build --features ballista\`" >&2
    exit 2
fi
if ! "$segql" cluster --help >/dev/null 2>&1; then
    echo "error: $segql was built without Ballista support; build it with \`--features ballista\`" >&2
    exit 2
fi

work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
fail() {
    echo "error: $*" >&2
    for log in "$work"/*.log; do
        echo "---- $log" >&2
        tail -n 30 "$log" >&2
    done
    exit 1
}

scheduler_port=50150
"$segql" cluster scheduler --port "$scheduler_port" >"$work/scheduler.log" 2>&1 &
pids+=($!)
for i in 1 2; do
    port=$((scheduler_port + 2 * i - 1))
    mkdir -p "$work/executor$i"
    "$segql" cluster executor --scheduler "127.0.0.1:$scheduler_port" \
        --port "$port" --grpc-port "$((port + 1))" --slots 1 --work-dir "$work/executor$i" \
        >"$work/executor$i.log" 2>&1 &
    pids+=($!)
done

# Wait for the scheduler to listen and both executors to serve their Flight ports.
for port in "$scheduler_port" $((scheduler_port + 1)) $((scheduler_port + 3)); do
    for _ in $(seq 60); do
        (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.5
    done
    (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null || fail "nothing listens on port $port after 30 s"
done
# Executors register with the scheduler right after they start listening.
sleep 2

engine="ballista://127.0.0.1:$scheduler_port"
file=examples/shop/segments.seg
segments=$("$segql" count "$file" 2>/dev/null | tail -n +2 | awk '{print $1}')
[[ -n "$segments" ]] || fail "no segments in $file"
compared=0
for segment in $segments; do
    "$segql" run "$file" --segment "$segment" | sort >"$work/local.csv"
    "$segql" run "$file" --segment "$segment" --engine "$engine" | sort >"$work/cluster.csv" ||
        fail "segment $segment failed on $engine"
    if ! cmp -s "$work/local.csv" "$work/cluster.csv"; then
        diff "$work/local.csv" "$work/cluster.csv" | head -n 10 >&2
        fail "segment $segment: members differ between this process and $engine"
    fi
    echo "$segment: $(($(wc -l <"$work/local.csv") - 1)) members, the same on $engine"
    compared=$((compared + 1))
done
"$segql" count "$file" 2>/dev/null >"$work/local-counts.csv"
"$segql" count "$file" --engine "$engine" 2>/dev/null >"$work/cluster-counts.csv" || fail "count failed on $engine"
cmp -s "$work/local-counts.csv" "$work/cluster-counts.csv" || fail "counts differ on $engine"
# Both executors took part: each task writes its output to its executor's work directory.
for i in 1 2; do
    [[ -n "$(find "$work/executor$i" -type f -print -quit)" ]] || fail "executor $i ran no task"
done
echo "ok: $compared segments and the one-pass counts are identical on $engine (1 scheduler, 2 executors)"
