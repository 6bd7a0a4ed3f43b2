#!/usr/bin/env bash
# Scale fixture: for each size, populate a satellite through its own write path and
# measure list pages, the compliance summary, the alert list, one authorize's latency, sync export,
# startup and resident memory. Usage: benches/scale.sh [SIZE...] (default 10000 100000 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(10000 100000 1000000)
cargo build --release --quiet
bin=$PWD/target/release/satellite
export SATELLITE_ADMIN_PASSWORD=scale-fixture-password
work=$(mktemp -d)
trap 'pkill -f "$work" 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT

ms() { python3 -c "import sys; print(f'{float(sys.argv[1])*1000:.1f}')" "$1"; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# An authority key to pin, so the satellite can export requests.
"$bin" --data "$work/authority" serve --role authority --console-addr 127.0.0.1:0 --device-http-addr 127.0.0.1:0 --device-https-addr 127.0.0.1:0 >"$work/a.out" 2>/dev/null &
sleep 1; kill %1; wait || true
"$bin" --data "$work/authority" account create Acme >/dev/null
"$bin" --data "$work/authority" va create Acme CORE >/dev/null
token=$("$bin" --data "$work/authority" enroll create --account Acme --name scale 2>/dev/null)
"$bin" --data "$work/authority" authority-key --out "$work/authority.pem" >/dev/null

printf '| instances | populate s | startup s | RSS MB | devices page, middle ms | devices page, first ms | compliance summary ms | alerts ms | authorize p50 ms | authorize p99 ms | export s | export MB |\n'
printf '|---|---|---|---|---|---|---|---|---|---|---|---|\n'
for n in "${sizes[@]}"; do
  d="$work/sat-$n"
  "$bin" --data "$d" account create Acme >/dev/null 2>&1
  "$bin" --data "$d" va create Acme CORE >/dev/null
  "$bin" --data "$d" eula accept --account Acme >/dev/null
  pop=$( { /usr/bin/time -f %e "$bin" --data "$d" populate --account Acme --va CORE --devices "$n" --batch 10000 >/dev/null; } 2>&1 | tail -1)
  "$bin" --data "$d" upstream set --url https://127.0.0.1:1 --enrollment-token "$token" --authority-key "$work/authority.pem" >/dev/null
  t0=$(date +%s.%N)
  "$bin" --data "$d" serve --console-addr 127.0.0.1:0 --device-http-addr 127.0.0.1:0 --device-https-addr 127.0.0.1:0 >"$d.out" 2>"$d.err" &
  pid=$!
  until grep -q "listening device-https" "$d.out" 2>/dev/null; do sleep 0.01; done
  t1=$(date +%s.%N)
  startup=$(python3 -c "print(f'{$t1-$t0:.2f}')")
  console=$(awk '/listening console/{print $3}' "$d.out")
  http=$(awk '/listening device-http /{print $3}' "$d.out")
  out=$("$bin" --data "$d" api-client create scale --role viewer)
  id=$(echo "$out" | awk '/client_id/{print $2}'); secret=$(echo "$out" | awk '/client_secret/{print $2}')
  bearer=$(curl -sk "https://$console/oauth/token" -d grant_type=client_credentials -d "client_id=$id" -d "client_secret=$secret" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  page=$(for i in 1 2 3 4 5; do curl -sk -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $bearer" -H 'Content-Type: application/json' -d "{\"limit\":50,\"offset\":$((n/2))}" "https://$console/api/v1/accounts/Acme/devices"; done | median)
  first=$(for i in 1 2 3 4 5; do curl -sk -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $bearer" -H 'Content-Type: application/json' -d '{"limit":50}' "https://$console/api/v1/accounts/Acme/devices"; done | median)
  summary=$(for i in 1 2 3 4 5; do curl -sk -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $bearer" -H 'Content-Type: application/json' -d '{}' "https://$console/api/v1/accounts/Acme/licenses"; done | median)
  alerts=$(for i in 1 2 3 4 5; do curl -sk -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $bearer" "https://$console/api/v1/alerts"; done | median)
  tok=$("$bin" --data "$d" token create --account Acme --va CORE --uses 1000)
  lat=$("$bin" simulate --url "http://$http" --token "$tok" --devices 200 --concurrency 1 --seed 99 2>"$d.sim" | awk "/^authorize/" || true)
  p50=$(echo "$lat" | sed -E 's/.*p50 +([0-9.]+) ms.*/\1/'); p99=$(echo "$lat" | sed -E 's/.*p99 +([0-9.]+) ms.*/\1/')
  rss=$(( $(ps -o rss= -p "$pid") / 1024 ))
  kill "$pid"; wait "$pid" || true
  ex=$( { /usr/bin/time -f %e "$bin" --data "$d" sync export --out "$d/request.zip" >/dev/null; } 2>&1 | tail -1)
  size=$(python3 -c "import os; print(f'{os.path.getsize(\"$d/request.zip\")/1e6:.1f}')")
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$n" "$pop" "$startup" "$rss" "$(ms "$page")" "$(ms "$first")" "$(ms "$summary")" "$(ms "$alerts")" "$p50" "$p99" "$ex" "$size"
done
