#!/usr/bin/env bash
# The README's demo: install, generate local taxi data, write the demo spicepod and start
# Airflow standalone with it. Everything lives in ./.airflow-demo (gitignored); re-running reuses it.
#
#   bash scripts/demo.sh              # set up and start Airflow (Ctrl-C stops it)
#   bash scripts/demo.sh --no-start   # set up only, then exit (used by tests)
#
# Environment: ACCEL_DEMO_PORT (default 8080), ACCEL_DEMO_ROWS (default 200000).
set -euo pipefail

usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; }

start=1
for arg in "$@"; do
  case "$arg" in
    --no-start) start=0 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "demo.sh: unknown option '$arg'" >&2; usage >&2; exit 2 ;;
  esac
done

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
port="${ACCEL_DEMO_PORT:-8080}"
rows="${ACCEL_DEMO_ROWS:-200000}"
files=4

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# Refuse early if the port is taken: standalone would otherwise start and its api-server die.
if [[ $start == 1 ]] && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
  echo "demo.sh: port $port is already in use; stop what runs there or set ACCEL_DEMO_PORT." >&2
  exit 1
fi

# (a) Install: .venv with the locked dependencies and this package in editable mode.
say "Installing (scripts/bootstrap.sh)"
bash scripts/bootstrap.sh
venv="$repo/.venv"
python="$venv/bin/python"
# `airflow standalone` starts its components as `airflow <command>` from PATH.
export PATH="$venv/bin:$PATH"

# (b) Airflow configuration, all through the environment so the repository's files stay clean.
export AIRFLOW_HOME="$repo/.airflow-demo"
data="$AIRFLOW_HOME/demo-data"
mkdir -p "$AIRFLOW_HOME"
cat >"$AIRFLOW_HOME/demo.env" <<EOF
# Written by scripts/demo.sh: 'source' this file to run airflow CLI commands against the demo.
export PATH="$venv/bin:\$PATH"
export AIRFLOW_HOME="$AIRFLOW_HOME"
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="sqlite:///$AIRFLOW_HOME/airflow.db"
export AIRFLOW__CORE__EXECUTOR=LocalExecutor
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__DAGS_FOLDER="$repo/dags"
export AIRFLOW__CORE__AUTH_MANAGER=airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=admin:admin
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE="$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated"
export AIRFLOW__API__PORT=$port
export AIRFLOW__API__BASE_URL="http://localhost:$port"
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://localhost:$port/execution/"
export AIRFLOW__ACCEL__SPICEPOD_PATH="$AIRFLOW_HOME/spicepod.yaml"
export AIRFLOW__ACCEL__DATA_DIR="$AIRFLOW_HOME/accel"
# On-demand refreshes start sooner: an idle scheduler loops every 0.1 s instead of every 1 s, and
# LocalExecutor's workers start from a forkserver that has imported what a refresh task needs, so
# each task process inherits those imports (README: On-demand latency).
export AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME=0.1
export AIRFLOW__SCHEDULER__MP_START_METHOD=forkserver
export AIRFLOW__SCHEDULER__MP_FORKSERVER_PRELOAD=airflow_provider_accel.preload
EOF
# shellcheck source=/dev/null
source "$AIRFLOW_HOME/demo.env"
mkdir -p "$AIRFLOW__ACCEL__DATA_DIR" "$AIRFLOW__CORE__DAGS_FOLDER"

# A known login: the simple auth manager only generates a password for users missing from
# this file, so writing admin's entry first makes the login admin / admin on every run.
printf '{"admin": "admin"}\n' >"$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"

# (c) Demo data, generated once. The last of the time-ordered files is held back in drops/ so
# that copying it in later shows an append refresh picking up only new trips.
# The marker records the row count, so changing ACCEL_DEMO_ROWS regenerates the data.
if [[ "$(cat "$data/.complete" 2>/dev/null)" != "$rows" ]]; then
  say "Generating $rows taxi trips in $files files (local, deterministic)"
  rm -rf "$data"
  "$python" -m airflow_provider_accel.demo.taxi --rows "$rows" --files "$files" --out "$data/generated"
  mkdir -p "$data/taxi_trips" "$data/drops"
  last="$(printf 'taxi_trips-%05d.parquet' $((files - 1)))"
  mv "$data/generated/$last" "$data/drops/"
  mv "$data/generated/"*.parquet "$data/taxi_trips/"
  rmdir "$data/generated"
  echo "$rows" >"$data/.complete"
fi

# (d) The concrete spicepod: the template with absolute data paths, replaced atomically because
# a running dag-processor may be reading it.
template="$(<"$repo/examples/demo/spicepod.yaml")"
printf '%s\n' "${template//'{DEMO_DATA}'/"$data"}" >"$AIRFLOW__ACCEL__SPICEPOD_PATH.tmp"
mv "$AIRFLOW__ACCEL__SPICEPOD_PATH.tmp" "$AIRFLOW__ACCEL__SPICEPOD_PATH"

say "Preparing the metadata database ($AIRFLOW_HOME/airflow.db)"
airflow db migrate >"$AIRFLOW_HOME/db-migrate.log" 2>&1 || {
  cat "$AIRFLOW_HOME/db-migrate.log" >&2
  exit 1
}

# (e) How to use it.
url="http://localhost:$port"
cat <<EOF

  Airflow UI   $url   (login: admin / admin)
  Spicepod     $AIRFLOW__ACCEL__SPICEPOD_PATH
  DuckDB files $AIRFLOW__ACCEL__DATA_DIR
  CLI          source $AIRFLOW_HOME/demo.env

  Refresh a dataset on demand through Spice's REST API:

    TOKEN=\$(curl -s -X POST $url/auth/token -H 'Content-Type: application/json' \\
      -d '{"username": "admin", "password": "admin"}' \\
      | python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')
    curl -X POST $url/v1/datasets/taxi_trips/acceleration/refresh \\
      -H "Authorization: Bearer \$TOKEN" -H 'Content-Type: application/json' \\
      -d '{"refresh_sql": "SELECT * FROM taxi_trips WHERE tip_amount > 10.0"}'

  New data for the append dataset: cp $data/drops/*.parquet $data/taxi_trips/
  Walkthrough: docs/demo.md

EOF

if [[ $start == 0 ]]; then
  say "Set up done (--no-start); start it with: bash scripts/demo.sh"
  exit 0
fi

# (f) Scheduler, dag-processor, triggerer and api-server in one process tree.
#
# Not `exec`: with Airflow 3.3.2 the LocalExecutor's worker processes can outlive Ctrl-C once
# tasks have run (the scheduler waits on them until a second Ctrl-C, then leaves them idle and
# orphaned; they ignore SIGINT by design). So after standalone returns, end whatever is left of
# this script's own process group - only when the script leads that group (started from a shell),
# never a caller's.
reap_leftovers() {
  [[ "$(ps -o pgid= -p $$ 2>/dev/null | tr -d ' ')" == "$$" ]] || return 0
  local pids
  pids="$(ps -eo pid=,pgid= | awk -v g=$$ '$2 == g && $1 != g {print $1}')"
  [[ -n $pids ]] || return 0
  # shellcheck disable=SC2086  # word splitting intended: one pid per word
  kill -TERM $pids 2>/dev/null || true
  sleep 2
  pids="$(ps -eo pid=,pgid= | awk -v g=$$ '$2 == g && $1 != g {print $1}')"
  # shellcheck disable=SC2086
  [[ -z $pids ]] || kill -KILL $pids 2>/dev/null || true
}
trap reap_leftovers EXIT
say "Starting Airflow standalone on $url (Ctrl-C to stop; press it again if shutdown waits)"
airflow standalone
