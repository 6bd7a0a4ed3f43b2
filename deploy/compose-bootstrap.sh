#!/bin/sh
# One-shot setup for compose.yaml: on the first run, enrolls the satellite with the authority
# (account, virtual account, enrollment token, pinned key and certificate) and syncs once.
# It runs with both data volumes mounted while the authority serves.
set -eu

# The defaults are the mounts of compose.yaml; the variables let a test run the same steps.
authority="${BOOTSTRAP_AUTHORITY_DATA:-/var/lib/authority}"
site="${BOOTSTRAP_SATELLITE_DATA:-/var/lib/satellite}"
url="${BOOTSTRAP_UPSTREAM_URL:-https://authority:8443}"
account="${SATELLITE_ACCOUNT:-Lab}"
va="${SATELLITE_VA:-DEFAULT}"
name="${SATELLITE_SITE:-site-1}"

if satellite --data "$site" sync status --format json | grep -q '"configured": true'; then
    echo "satellite already has an upstream: nothing to do"
    exit 0
fi

# Both exist after a half-finished earlier run; anything else fails at the next step.
satellite --data "$authority" account create "$account" 2>/dev/null || true
satellite --data "$authority" va create "$account" "$va" 2>/dev/null || true

token=$(satellite --data "$authority" enroll create --account "$account" --name "$name" --va "$va")
key=$(mktemp)
trap 'rm -f "$key"' EXIT
satellite --data "$authority" authority-key --out "$key" >/dev/null
satellite --data "$site" upstream set \
    --url "$url" \
    --enrollment-token "$token" \
    --authority-key "$key" \
    --ca "$authority/tls/console.crt"
satellite --data "$site" sync now
echo "satellite enrolled as $name for $account/$va"
