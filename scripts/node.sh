#!/usr/bin/env bash
# Spice's JavaScript SDK for the client tests (tests/e2e/test_spice_clients.py): the versions pinned in
# tests/js/package-lock.json, installed with the machine's npm. Skipped (with a note) without npm, and
# a no-op when tests/js/node_modules already matches the lock file.
set -euo pipefail
cd "$(dirname "$0")/../tests/js"

if ! command -v npm >/dev/null 2>&1; then
  echo "npm not found: the Spice SDK tests will skip (fail under ACCEL_REQUIRE_SERVICES=1). Install Node.js 20+." >&2
  exit 0
fi
# npm ci writes node_modules/.package-lock.json; identical to the lock's packages means installed.
if [ -f node_modules/.package-lock.json ] && [ node_modules/.package-lock.json -nt package-lock.json ]; then
  exit 0
fi
# --ignore-scripts: the SDK needs no install scripts (protobufjs's postinstall only prints a notice).
npm ci --no-audit --no-fund --ignore-scripts
