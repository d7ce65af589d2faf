#!/usr/bin/env bash
# The whole test suite (the README's test command): install, lint, then pytest with any extra args.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
bash scripts/node.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/pytest "$@"
