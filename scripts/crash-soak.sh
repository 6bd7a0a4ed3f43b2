#!/usr/bin/env bash
# Crash soak: simulated routers talk to a real satellite that is SIGKILLed at random
# moments and restarted on the same data dir; afterwards every acknowledged registration
# and report must be in the database, nothing half-applied (see tests/crash.rs).
#
#   scripts/crash-soak.sh [KILLS] [DEVICES] [SEED]
#
# KILLS defaults to 50, DEVICES to 64, SEED to one taken from the clock. The seed is
# printed; pass it again to replay the same kill moments and configurations.
set -euo pipefail
cd "$(dirname "$0")/.."
export SATELLITE_CRASH_KILLS="${1:-${SATELLITE_CRASH_KILLS:-50}}"
export SATELLITE_CRASH_DEVICES="${2:-${SATELLITE_CRASH_DEVICES:-64}}"
if [ -n "${3:-}" ]; then export SATELLITE_CRASH_SEED="$3"; fi
exec cargo test --test crash crash_soak -- --ignored --nocapture
