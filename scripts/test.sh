#!/usr/bin/env bash
# The whole test suite, on a fresh machine too (the README's test command): install, set up what the
# tests need from the machine, lint and type-check, then pytest with any extra arguments.
#
#   bash scripts/test.sh                         # everything
#   bash scripts/test.sh tests/accelerator -x    # extra arguments go to pytest
#   bash scripts/test.sh -m "not processes"      # the fast loop (CONTRIBUTING.md)
#
# Environment: ACCEL_TEST_SETUP=0 skips the machine setup (step 2); ACCEL_REQUIRE_SERVICES=1 (CI)
# turns every "server unreachable" skip into a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/_lib.sh
source scripts/_lib.sh

# 1. Python: .venv with the locked dependencies and this package, editable.
bash scripts/bootstrap.sh

# 2. The machine: one idempotent script per thing the tests need, each runnable on its own.
#    Add a new one here as one line (and nowhere else: .ci/run calls this script).
if [[ ${ACCEL_TEST_SETUP:-1} != 0 ]]; then
  bash scripts/services.sh # PostgreSQL, MariaDB, Redis (started if stopped)
  bash scripts/odbc.sh     # unixODBC and the PostgreSQL/MariaDB ODBC drivers for tests/sources
  bash scripts/browser.sh  # Debian's chromium for tests/ui
  bash scripts/node.sh     # Spice's JavaScript SDK for tests/e2e (tests/js, npm ci)
fi

# 3. Static checks: fast, so they fail before the long part.
say "ruff, mypy"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy # --strict on the package, bench/ and dags/; settings in pyproject.toml [tool.mypy]

# 4. The tests.
say "pytest $*"
status=0
.venv/bin/pytest "$@" || status=$?
if ((status == 5)); then
  # pytest's "no test collected". With a selection (-k, -m, a path) that is the selection's answer,
  # not a failure; for the whole suite it means collection itself is broken.
  selected=0
  for arg in "$@"; do
    case "$arg" in -k* | -m* | --deselect* | --lf | --last-failed | [!-]*) selected=1 ;; esac
  done
  if ((selected)); then
    echo "scripts/test.sh: no test matched the arguments '$*': nothing ran." >&2
    exit 0
  fi
  echo "scripts/test.sh: pytest collected no test at all; check tests/ and [tool.pytest.ini_options]." >&2
fi
exit "$status"
