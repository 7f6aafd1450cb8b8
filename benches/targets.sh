#!/usr/bin/env bash
# Measure the targets of benches/README.md that criterion does not: 20 ms latency, a per-minute
# quota, start-up time and --help. Each run is against a fake server on 127.0.0.1 that this
# script starts and stops.
#
# Usage: benches/targets.sh [latency|quota|startup]...   (default: all three)
# Needs `cargo build --release --bin vt-enrich --example fake_vt` first.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
bin="$repo/target/release/vt-enrich"
fake="$repo/target/release/examples/fake_vt"
work="$(mktemp -d "${TMPDIR:-/tmp}/vt-enrich-targets.XXXXXX")"
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
export VT_API_KEY=test-key XDG_CONFIG_HOME="$work/no-config" XDG_CACHE_HOME="$work/cache"

# addresses COUNT FILE: writes COUNT distinct public addresses.
addresses() {
    python3 -c '
import sys
def a(n): return f"45.{10 + n // 62_500}.{(n // 250) % 250}.{n % 250 + 1}"
sys.stdout.write("".join(a(n) + "\n" for n in range(int(sys.argv[1]))))' "$1" >"$2"
}

# start_server ARGS...: starts the fake server and sets api_url.
start_server() {
    if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; fi
    : >"$work/fake.url"
    "$fake" --port 0 "$@" >"$work/fake.url" 2>"$work/fake.log" &
    server_pid=$!
    for _ in $(seq 100); do
        [[ -s "$work/fake.url" ]] && break
        sleep 0.05
    done
    api_url="$(head -n1 "$work/fake.url")"
}

# timed NAME COMMAND...: runs COMMAND under /usr/bin/time -v and prints wall seconds, CPU
# seconds and peak RSS.
timed() {
    local name="$1"
    shift
    local start end
    start="$(date +%s%N)"
    /usr/bin/time -v -o "$work/time" "$@" >"$work/out" 2>"$work/err" ||
        { echo "$name failed:"; tail -n 20 "$work/err"; exit 1; }
    end="$(date +%s%N)"
    awk -v n="$name" -v s="$start" -v e="$end" -v load="$(cut -d' ' -f1 /proc/loadavg)" '
        /User time/ { user = $NF } /System time/ { sys = $NF }
        /Maximum resident/ { rss = $NF / 1024 }
        END { printf "%-34s wall %7.3f s  cpu %6.2f s  peak %6.1f MB  load %s\n",
              n, (e - s) / 1e9, user + sys, rss, load }' "$work/time"
}

latency() {
    addresses 10000 "$work/ips.txt"
    start_server --latency-ms 20
    local run=("$bin" enrich "$work/ips.txt" -o "$work/out.parquet" --api-url "$api_url"
        --profile unlimited --concurrency 64)
    timed "20ms latency, --no-cache" "${run[@]}" --no-cache
    timed "20ms latency, new cache" "${run[@]}" --cache "$work/c1.sqlite"
    start_server
    run=("$bin" enrich "$work/ips.txt" -o "$work/out.parquet" --api-url "$api_url"
        --profile unlimited --concurrency 64)
    timed "no latency, --no-cache" "${run[@]}" --no-cache
    timed "no latency, new cache" "${run[@]}" --cache "$work/c2.sqlite"
}

quota() {
    addresses 6000 "$work/ips6k.txt"
    start_server --per-minute 6000
    timed "6000 addresses, quota 6000/min" "$bin" enrich "$work/ips6k.txt" \
        -o "$work/quota.parquet" --api-url "$api_url" --profile unlimited --per-minute 6000 \
        --concurrency 64 --cache "$work/quota.sqlite" --summary-json "$work/quota.json"
    echo "summary: $(tr -d '\n ' <"$work/quota.json")"
    kill "$server_pid"
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
    echo "server: $(grep -o 'requests.*' "$work/fake.log" | tail -n1)"
}

startup() {
    addresses 1 "$work/one.txt"
    start_server
    local start end
    start="$(date +%s%N)"
    for _ in $(seq 20); do "$bin" --help >/dev/null; done
    end="$(date +%s%N)"
    echo "vt-enrich --help: $(( (end - start) / 20000000 )) ms per run (mean of 20)"
    start="$(date +%s%N)"
    for n in $(seq 20); do
        "$bin" enrich "$work/one.txt" -o "$work/one-$n.parquet" --api-url "$api_url" \
            --profile unlimited --no-cache --progress none 2>/dev/null
    done
    end="$(date +%s%N)"
    echo "enrich of 1 address, whole run: $(( (end - start) / 20000000 )) ms per run (mean of 20)"
}

echo "machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
for step in "${@:-latency quota startup}"; do
    for name in $step; do "$name"; done
done
