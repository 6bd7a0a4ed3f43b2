#!/usr/bin/env bash
# Device ingest throughput as a ratio of /healthz on the same server with the same client.
# Usage: benches/ingest.sh [SERVER_BINARY [SIMULATOR_BINARY]]
# Both default to target/release/satellite; passing an older build as the server compares
# two servers under one simulator. DEVICES, CONCURRENCY and ROUNDS override the load.
set -euo pipefail
cd "$(dirname "$0")/.."
server=$(realpath "${1:-target/release/satellite}")
sim=$(realpath "${2:-$server}")
devices=${DEVICES:-10000}
concurrency=${CONCURRENCY:-512}
rounds=${ROUNDS:-2}
export SATELLITE_ADMIN_PASSWORD=ingest-bench-password
work=$(mktemp -d)
pid=
cleanup() {
  [ -z "$pid" ] || kill "$pid" 2>/dev/null || true
  [ -z "$pid" ] || wait "$pid" 2>/dev/null || true
  [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

d="$work/data"
"$server" --data "$d" account create A >/dev/null 2>&1
"$server" --data "$d" va create A V >/dev/null
"$server" --data "$d" eula accept --account A >/dev/null
token=$("$server" --data "$d" token create --account A --va V)
"$server" --data "$d" serve --console-addr 127.0.0.1:0 --device-http-addr 127.0.0.1:0 --device-https-addr 127.0.0.1:0 >"$work/serve.out" 2>"$work/serve.err" &
pid=$!
for _ in $(seq 1 500); do grep -q "listening device-http " "$work/serve.out" 2>/dev/null && break; sleep 0.02; done
http=$(awk '/listening device-http /{print $3}' "$work/serve.out")
[ -n "$http" ] || { echo "the server did not start:" >&2; cat "$work/serve.err" >&2; exit 1; }
echo "server $server, simulator $sim, $devices devices, concurrency $concurrency, load: $(cut -d' ' -f1-3 /proc/loadavg)"
"$sim" simulate --url "http://$http" --token "$token" --devices "$devices" --concurrency "$concurrency" --rounds "$rounds" --baseline
kill "$pid"; wait "$pid" || true; pid=
grep -o 'jobs=[0-9]* commits=[0-9]*' "$work/serve.err" | tail -1 || true
