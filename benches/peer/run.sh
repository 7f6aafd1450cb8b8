#!/usr/bin/env bash
# Run the same addresses through the Python peer (peer_enrich.py) and through vt-enrich against
# one fake VirusTotal server on 127.0.0.1, then the same saved documents through both flatteners,
# and print wall time, addresses or documents per second, peak RSS and the ratios.
#
# Usage: benches/peer/run.sh [COUNT] [CONCURRENCY]    (defaults: 10000 addresses, 64)
# Environment: PEER_VENV (default target/peer-venv, made by setup.sh), NO_BUILD=1 to skip
# `cargo build --release`.
set -euo pipefail

count="${1:-10000}"
concurrency="${2:-64}"
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${PEER_VENV:-$repo/target/peer-venv}"
python="$venv/bin/python"
bin="$repo/target/release/vt-enrich"
fake="$repo/target/release/examples/fake_vt"

if [[ ! -x "$python" ]]; then
    echo "run.sh: no virtual environment at $venv; run benches/peer/setup.sh first" >&2
    exit 2
fi
if [[ "${NO_BUILD:-0}" != 1 ]]; then
    (cd "$repo" && cargo build --release --quiet --bin vt-enrich --example fake_vt)
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/vt-enrich-peer.XXXXXX")"
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# No user config, proxy or cache directory of the caller takes part.
export VT_API_KEY=test-key XDG_CONFIG_HOME="$work/no-config" XDG_CACHE_HOME="$work/cache"
unset HTTP_PROXY HTTPS_PROXY http_proxy https_proxy ALL_PROXY all_proxy
for name in $(env | sed -n 's/^\(VT_ENRICH_[A-Z_]*\)=.*/\1/p'); do unset "$name"; done

# Distinct public addresses, the same list as in benches/README.md.
python3 -c '
import sys
def a(n): return f"45.{10 + n // 62_500}.{(n // 250) % 250}.{n % 250 + 1}"
sys.stdout.write("".join(a(n) + "\n" for n in range(int(sys.argv[1]))))' "$count" >"$work/ips.txt"
python3 "$repo/benches/gen_jsonl.py" "$count" "$work/docs.jsonl"

"$fake" --port 0 >"$work/fake.url" 2>"$work/fake.log" &
server_pid=$!
for _ in $(seq 100); do
    [[ -s "$work/fake.url" ]] && break
    sleep 0.05
done
api_url="$(head -n1 "$work/fake.url")"
host="${api_url%/api/v3}"
if [[ -z "$api_url" ]]; then
    echo "run.sh: the fake server did not start; its log:" >&2
    cat "$work/fake.log" >&2
    exit 1
fi

results="$work/results.tsv"
: >"$results"

# measure NAME UNITS COMMAND...: runs COMMAND under /usr/bin/time -v and appends
# name, units, wall seconds and peak RSS in MB to the results.
measure() {
    local name="$1" units="$2"
    shift 2
    local start end
    start="$(date +%s%N)"
    if ! /usr/bin/time -v -o "$work/$name.time" "$@" >"$work/$name.out" 2>"$work/$name.err"; then
        echo "run.sh: $name failed; its output:" >&2
        tail -n 20 "$work/$name.err" >&2
        exit 1
    fi
    end="$(date +%s%N)"
    local rss_kb
    rss_kb="$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/$name.time")"
    printf '%s\t%s\t%s\t%s\n' "$name" "$units" \
        "$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.3f", (e - s) / 1e9 }')" \
        "$(awk -v k="$rss_kb" 'BEGIN { printf "%.1f", k / 1024 }')" >>"$results"
}

load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
enrich=("$bin" enrich "$work/ips.txt" --api-url "$api_url" --profile unlimited
    --concurrency "$concurrency")

measure peer_fetch "$count" "$python" "$here/peer_enrich.py" fetch --host "$host" \
    --key test-key --concurrency "$concurrency" "$work/ips.txt" "$work/peer.parquet"
measure vt_enrich_no_cache "$count" "${enrich[@]}" -o "$work/out-nc.parquet" --no-cache
measure vt_enrich_cache "$count" "${enrich[@]}" -o "$work/out-c.parquet" \
    --cache "$work/fresh.sqlite"
measure peer_flatten "$count" "$python" "$here/peer_enrich.py" flatten "$work/docs.jsonl" \
    "$work/peer-flat.parquet"
measure vt_enrich_flatten "$count" "$bin" flatten "$work/docs.jsonl" -o "$work/flat.parquet"
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

docs_mb="$(awk -v b="$(stat -c %s "$work/docs.jsonl")" 'BEGIN { printf "%.1f", b / 1e6 }')"
echo "machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
echo "load average before: $load_before, after: $load_after"
echo "addresses: $count, concurrency: $concurrency, documents: $docs_mb MB of JSON Lines"
echo "peer: $(tail -n1 "$work/peer_fetch.out")"
echo "peer flatten: $(tail -n1 "$work/peer_flatten.out")"
echo
awk -F'\t' -v mb="$docs_mb" '
    { name[NR] = $1; n[NR] = $2; wall[NR] = $3; rss[NR] = $4; row[$1] = NR }
    END {
        printf "%-20s %9s %12s %10s %13s\n", "run", "wall s", "per second", "peak MB", "MB JSON/s"
        for (i = 1; i <= NR; i++) {
            rate = n[i] / wall[i]
            json = (name[i] ~ /flatten/) ? sprintf("%.0f", mb / wall[i]) : "-"
            printf "%-20s %9.3f %12.0f %10.1f %13s\n", name[i], wall[i], rate, rss[i], json
        }
        p = row["peer_fetch"]; f = row["peer_flatten"]
        print ""
        printf "vt-enrich --no-cache / peer, addresses/s: %.1fx, peak RSS: %.2fx\n",
            wall[p] / wall[row["vt_enrich_no_cache"]], rss[row["vt_enrich_no_cache"]] / rss[p]
        printf "vt-enrich with cache / peer, addresses/s: %.1fx, peak RSS: %.2fx\n",
            wall[p] / wall[row["vt_enrich_cache"]], rss[row["vt_enrich_cache"]] / rss[p]
        printf "vt-enrich flatten / peer flatten, documents/s: %.1fx, peak RSS: %.2fx\n",
            wall[f] / wall[row["vt_enrich_flatten"]], rss[row["vt_enrich_flatten"]] / rss[f]
    }' "$results"
