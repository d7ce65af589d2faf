#!/usr/bin/env bash
# The suite at the lower bound of every direct dependency: pyproject.toml's ranges, not the lock.
# uv resolves each direct dependency (of the package and of its all/test extras) to the lowest
# version its range admits, into .venv-lowest, and pytest runs there. A failure here means a lower
# bound in pyproject.toml is wrong: raise it to the version that works.
#
#   bash scripts/test-lowest.sh                  # the fast loop's tests (-m "not processes")
#   bash scripts/test-lowest.sh tests/sources    # other pytest arguments instead
#
# Run after scripts/test.sh (it needs .venv/bin/uv and the machine set up); .ci/run does.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/_lib.sh
source scripts/_lib.sh

venv=.venv-lowest
if [ ! -x "$venv/bin/python" ]; then
  "$(.venv/bin/python -c 'import sys; print(sys._base_executable)')" -m venv "$venv"
fi
say "Lowest direct dependencies into $venv"
# Editable, so the tests import this checkout; --reinstall-package keeps its metadata current.
.venv/bin/uv pip install --quiet --python "$venv/bin/python" --resolution lowest-direct \
  --reinstall-package airflow-provider-accel -e ".[all,test]"
.venv/bin/uv pip list --python "$venv/bin/python" 2>/dev/null |
  grep -iE '^(apache-airflow|apache-airflow-providers-[a-z-]+|duckdb|pyarrow|sqlglot|pendulum|pyyaml|croniter) ' |
  tr -s ' ' | sed 's/^/    /'

if (($# == 0)); then set -- -m "not processes"; fi
say "pytest at the lower bounds: $*"
status=0
"$venv/bin/pytest" -q -p no:cacheprovider "$@" || status=$?
if ((status == 5)); then
  echo "scripts/test-lowest.sh: no test matched '$*': nothing ran." >&2
  exit 0
fi
exit "$status"
