"""The production topology of docker-compose.yaml, run natively on this machine (no Docker).

From the compose file's own settings (:mod:`_compose_topology`; only hosts, ports and paths differ):
a PostgreSQL metadata database (a fresh database on the machine's server, dropped afterwards), a
Redis broker (a dedicated database number, flushed before and after), the CeleryExecutor with two
``airflow celery worker`` processes, the FAB auth manager with the admin and viewer that airflow-init
creates, and api-server, scheduler, dag-processor and triggerer. Everything is driven over HTTP.

Three datasets are refreshed at once; two share one DuckDB file. Their source is an HTTP server in
this test that answers after :data:`SOURCE_DELAY` seconds, so each refresh holds the file's writer
lock for at least that long and refreshes that start together must contend for it. When the lock
was held and when the file was written is recorded inside the workers by ``lock_probe/sitecustomize.py``
(a wrapper around the real lock and write functions; see its docstring).
"""

from __future__ import annotations

import concurrent.futures
import importlib.util
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import duckdb
import httpx
import pytest
import servers
from _compose_topology import load_compose, native_env, native_path, users

from airflow_provider_accel.testing import (
    AIRFLOW_BIN,
    free_port,
    log_tail,
    start_airflow,
    stop_process_groups,
    wait_healthy,
)

pytestmark = [pytest.mark.e2e, pytest.mark.processes, pytest.mark.timeout(600)]

REPO_ROOT = Path(__file__).resolve().parents[2]

REDIS_DB = 5  # this test's own Redis database number; only it is ever flushed
SOURCE_DELAY = 3.0  # seconds the HTTP source waits before answering (inside the writer lock)
STARTUP_TIMEOUT = 300.0  # generous: other work on a 2-core machine slows start-up a lot
WORKERS = ("airflow-worker-1", "airflow-worker-2")
SERVICES = ("api-server", "scheduler", "dag-processor", "triggerer", *WORKERS)
SHARED_FILE = "shared.duckdb"
SHARED = ("trips_a", "trips_b")
DATASETS = (*SHARED, "events")
TRIPS_ROWS = {"trips_a": 300, "trips_b": 200}
EVENT_ROWS = 50
#: The on-demand refresh of trips_b filters; its expected rows are computed from the CSV below.
TRIPS_B_SQL = "SELECT * FROM trips_b WHERE tip_amount > 10.0"

SPICEPOD = """\
version: v1
kind: Spicepod
name: production-topology
datasets:
  - from: {http}/trips_a.csv
    name: trips_a
    params: {{file_format: csv}}
    acceleration:
      enabled: true
      refresh_mode: full
      params: {{duckdb_file: {shared}}}
  - from: {http}/trips_b.csv
    name: trips_b
    params: {{file_format: csv}}
    acceleration:
      enabled: true
      refresh_mode: full
      params: {{duckdb_file: {shared}}}
  - from: file:{src}/events.csv
    name: events
    params: {{file_format: csv}}
    acceleration:
      enabled: true
      refresh_mode: full
"""


def trips(count: int) -> list[tuple[int, int, float]]:
    """Deterministic trips: (trip_id, passenger_count, tip_amount); every few tips above 10."""
    return [(i, 1 + i % 4, round((i * 37) % 150 / 10, 1)) for i in range(1, count + 1)]


def trips_csv(count: int) -> bytes:
    lines = ["trip_id,passenger_count,tip_amount"] + [f"{a},{b},{c}" for a, b, c in trips(count)]
    return ("\n".join(lines) + "\n").encode()


class SlowSource(ThreadingHTTPServer):
    """Serves ``files`` by name, each GET answered after ``delay`` seconds; logs each GET's interval."""

    daemon_threads = True

    def __init__(self, files: dict[str, bytes], delay: float) -> None:
        self.files, self.delay = files, delay
        self.requests: list[tuple[str, float, float]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                started = time.time()
                body = server.files.get(self.path.lstrip("/"))
                time.sleep(server.delay)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/csv")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                server.requests.append((self.path, started, time.time()))

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@dataclass
class Topology:
    """The running native topology: base URL, tokens by user, paths, processes."""

    root: Path
    base_url: str
    env: dict[str, str]
    data_dir: Path
    probe_log: Path
    settings: dict[str, str]
    users: dict[str, tuple[str, str]]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def logs(self) -> Path:
        return self.root / "process-logs"

    def log_tail(self, lines: int = 40) -> str:
        return log_tail(self.logs, SERVICES, lines)

    def client(self, user: str = "admin") -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[user]}"}
        # Generous: on a busy 2-core machine the single api-server worker can stall for tens of seconds.
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=90.0)

    def post_refresh(self, name: str, body: dict[str, Any], user: str = "admin") -> httpx.Response:
        with self.client(user) as client:
            return client.post(f"/v1/datasets/{name}/acceleration/refresh", json=body)

    def wait_for_refresh(self, name: str, run_id: str, timeout: float = 240.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self.client() as client:
            while True:
                response = client.get(f"/v1/datasets/{name}/acceleration/refresh/{quote(run_id, safe='')}")
                assert response.status_code == 200, response.text
                status = response.json()
                if status["state"] in ("success", "failed"):
                    return status
                if time.monotonic() > deadline:
                    raise AssertionError(f"{name} {run_id} still {status['state']}\n{self.log_tail()}")
                time.sleep(1)

    def wait_initial_loads(self, timeout: float = 240.0) -> dict[str, list[dict[str, Any]]]:
        """Wait until each dataset's DAG is parsed and its initial load finished; the runs by dataset."""
        deadline = time.monotonic() + timeout
        runs: dict[str, list[dict[str, Any]]] = {}
        with self.client() as client:
            for name in DATASETS:
                while True:
                    response = client.get(f"/api/v2/dags/accelerate_{name}/dagRuns")
                    if response.status_code == 200:
                        runs[name] = response.json()["dag_runs"]
                        if runs[name] and all(r["state"] in ("success", "failed") for r in runs[name]):
                            break
                    if time.monotonic() > deadline:
                        raise AssertionError(f"no finished initial load of {name}\n{self.log_tail()}")
                    time.sleep(1)
        return runs


def _run(args: list[str], env: dict[str, str], cwd: Path) -> None:
    result = subprocess.run(
        [str(AIRFLOW_BIN), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"airflow {args[:2]}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"


def _postgres() -> Any:
    import psycopg

    return psycopg.connect(
        host=servers.PG_HOST, port=servers.PG_PORT, user=servers.PG_USER, dbname="postgres", autocommit=True
    )


def _flush_redis_db() -> None:
    import redis

    redis.Redis(host=servers.REDIS_HOST, port=servers.REDIS_PORT, db=REDIS_DB).flushdb()


def _wait_workers_ready(topology: Topology, timeout: float = STARTUP_TIMEOUT) -> None:
    """Both Celery workers connected to the broker (Celery logs ``celery@<name> ready.``)."""
    deadline = time.monotonic() + timeout
    pending = set(WORKERS)
    while pending and time.monotonic() < deadline:
        for name in list(pending):
            if topology.processes[name].poll() is not None:
                raise RuntimeError(f"{name} exited\n{topology.log_tail()}")
            if f"celery@{name}" in (log := (topology.logs / f"{name}.log").read_text(errors="replace")) and (
                " ready." in log
            ):
                pending.discard(name)
        time.sleep(1)
    assert not pending, f"Celery workers {pending} not ready\n{topology.log_tail()}"


#: What ``airflow users create`` (airflow-init) does, for several users in one process. Run with
#: ``[fab] update_fab_perms`` off: the api-server has synced FAB's roles (most of the command's time).
CREATE_USERS = """\
import json, sys
from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder

with get_application_builder() as appbuilder:
    for role, name, password in json.loads(sys.argv[1]):
        if appbuilder.sm.find_user(name):
            continue
        user = appbuilder.sm.add_user(
            username=name, first_name=role, last_name="User", email=f"{name}@example.com",
            role=appbuilder.sm.find_role(role), password=password,
        )
        assert user, name
        print(f"User {name!r} created with role {role!r}")
"""


def _create_users(
    accounts: dict[str, tuple[str, str]], env: dict[str, str], cwd: Path, log_dir: Path
) -> subprocess.Popen[bytes]:
    argument = json.dumps([(role, name, password) for role, (name, password) in accounts.items()])
    log = open(log_dir / "create-users.log", "wb")  # noqa: SIM115 -- owned by the process
    return subprocess.Popen(
        [sys.executable, "-c", CREATE_USERS, argument],
        env=env,
        cwd=cwd,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


@pytest.fixture(scope="module")
def topology() -> Iterator[Topology]:
    missing = [
        m for m in ("airflow.providers.celery", "celery", "redis") if importlib.util.find_spec(m) is None
    ]
    if missing:
        pytest.fail(f"{missing} not installed: install apache-airflow-providers-celery and celery[redis]")
    servers.require_server("PostgreSQL", servers.PG_HOST, servers.PG_PORT)
    servers.require_server("Redis", servers.REDIS_HOST, servers.REDIS_PORT)
    compose = load_compose()
    root = Path(tempfile.mkdtemp(prefix="accel-topology-"))
    database = f"accel_topology_{uuid.uuid4().hex[:12]}"
    api_port = free_port()
    settings = native_env(
        compose,
        root=root,
        postgres=(servers.PG_HOST, servers.PG_PORT, servers.PG_USER, database),
        redis=(servers.REDIS_HOST, servers.REDIS_PORT, REDIS_DB),
        api=("127.0.0.1", api_port),
    )
    home = Path(settings["AIRFLOW_HOME"])
    for sub in ("dags", "logs", "config", "plugins"):
        (home / sub).mkdir(parents=True)
    shutil.copy(REPO_ROOT / "dags" / "accelerated_datasets.py", home / "dags")
    spicepod = Path(settings["AIRFLOW__ACCEL__SPICEPOD_PATH"])
    data_dir = Path(settings["AIRFLOW__ACCEL__DATA_DIR"])
    # Like the demo data under /opt/accel/data/demo: sources on the volume every worker mounts.
    source_dir = native_path(root, "/opt/accel/data/src")
    for directory in (spicepod.parent, data_dir, source_dir):
        directory.mkdir(parents=True, exist_ok=True)
    (source_dir / "events.csv").write_text(
        "id,value\n" + "".join(f"{i},{i * 10}\n" for i in range(1, EVENT_ROWS + 1))
    )
    source = SlowSource({f"{n}.csv": trips_csv(c) for n, c in TRIPS_ROWS.items()}, SOURCE_DELAY)
    threading.Thread(target=source.serve_forever, daemon=True).start()
    spicepod.write_text(SPICEPOD.format(http=source.url, shared=SHARED_FILE, src=source_dir))

    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW") and k != "PYTHONPATH"}
    env.update(settings)
    # Ports that compose gives each container for itself and that must differ on one machine.
    env.update(
        {
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        }
    )
    probe_log = root / "lock-probe.jsonl"
    topology = Topology(
        root=root,
        base_url=f"http://127.0.0.1:{api_port}",
        env=env,
        data_dir=data_dir,
        probe_log=probe_log,
        settings=settings,
        users=users(compose),
    )
    topology.logs.mkdir()
    with _postgres() as pg:
        pg.execute(f'CREATE DATABASE "{database}"')
    _flush_redis_db()
    helpers: list[subprocess.Popen[bytes]] = []
    try:
        # airflow-init: migrate (which writes the shared config file with its generated secrets at
        # AIRFLOW_CONFIG, as in compose), then the FAB admin and viewer.
        _run(["db", "migrate"], env, home)
        assert Path(settings["AIRFLOW_CONFIG"]).is_file()

        def start(name: str, args: list[str], extra: dict[str, str] | None = None) -> None:
            topology.processes[name] = start_airflow(
                topology.logs, name, args, {**env, **(extra or {})}, home
            )

        # Order for 2 cores: the api-server (slowest to start; it syncs FAB's roles) starts with the
        # scheduler, triggerer and workers; once it answers, the users are created (roles already
        # synced) while the dag-processor starts, so that the first refreshes find the execution API.
        start("api-server", ["api-server"])
        start("scheduler", ["scheduler"])
        start("triggerer", ["triggerer"])
        for name in WORKERS:
            start(
                name,
                ["celery", "worker", "--celery-hostname", name, "--pid", str(root / f"{name}.pid")],
                {
                    # Compose's workers are separate hosts; here each needs its own log-server port.
                    "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                    "PYTHONPATH": str(Path(__file__).with_name("lock_probe")),
                    "ACCEL_LOCK_PROBE_LOG": str(probe_log),
                },
            )
        wait_healthy(
            topology.base_url,
            topology.processes,
            STARTUP_TIMEOUT,
            describe=topology.log_tail,
            components=("metadatabase",),
        )
        users_created = _create_users(
            topology.users, {**env, "AIRFLOW__FAB__UPDATE_FAB_PERMS": "False"}, home, topology.logs
        )
        helpers.append(users_created)
        start("dag-processor", ["dag-processor"])
        assert users_created.wait(timeout=300) == 0, (topology.logs / "create-users.log").read_text()[-3000:]
        wait_healthy(topology.base_url, topology.processes, STARTUP_TIMEOUT, describe=topology.log_tail)
        _wait_workers_ready(topology)
        for role, user in (("Admin", "admin"), ("Viewer", "viewer")):
            name, password = topology.users[role]
            response = httpx.post(
                f"{topology.base_url}/auth/token", json={"username": name, "password": password}, timeout=30
            )
            assert response.status_code == 201, response.text
            topology.tokens[user] = response.json()["access_token"]
        yield topology
    finally:
        stop_process_groups([*helpers, *topology.processes.values()])
        source.shutdown()
        source.server_close()
        with _postgres() as pg:
            pg.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        _flush_redis_db()
        if os.environ.get("ACCEL_E2E_KEEP_HOME"):
            print(f"production topology root kept at {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


@dataclass
class Refreshes:
    """The initial loads, and the three refreshes triggered at once: run statuses by dataset."""

    initial: dict[str, list[dict[str, Any]]]
    triggered: dict[str, dict[str, Any]]
    viewer_response: httpx.Response
    runs_before_viewer: int
    runs_after_viewer: int


@pytest.fixture(scope="module")
def refreshes(topology: Topology) -> Refreshes:
    initial = topology.wait_initial_loads()
    with topology.client() as client:
        before = client.get("/api/v2/dags/accelerate_trips_a/dagRuns").json()["total_entries"]
    viewer_response = topology.post_refresh("trips_a", {}, user="viewer")
    with topology.client() as client:
        after = client.get("/api/v2/dags/accelerate_trips_a/dagRuns").json()["total_entries"]
    bodies = {"trips_a": {}, "trips_b": {"refresh_sql": TRIPS_B_SQL}, "events": {}}
    barrier = threading.Barrier(len(bodies))

    def trigger(name: str) -> httpx.Response:
        barrier.wait()
        return topology.post_refresh(name, bodies[name])

    with concurrent.futures.ThreadPoolExecutor(len(bodies)) as pool:
        responses = dict(zip(bodies, pool.map(trigger, bodies), strict=True))
    for name, response in responses.items():
        assert response.status_code == 201, f"{name}: {response.status_code} {response.text}"
    triggered = {
        name: topology.wait_for_refresh(name, response.json()["dag_run_id"])
        for name, response in responses.items()
    }
    return Refreshes(initial, triggered, viewer_response, before, after)


def _ts(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def _probe(topology: Topology) -> list[dict[str, Any]]:
    assert topology.probe_log.exists(), "the lock probe recorded nothing: was it loaded by the workers?"
    return [json.loads(line) for line in topology.probe_log.read_text().splitlines()]


def test_settings_are_the_compose_files(topology: Topology) -> None:
    """The running topology uses compose's executor, auth manager, pool size, spicepod path and data dir."""
    compose_env = {str(k): str(v) for k, v in load_compose()["x-airflow-common"]["environment"].items()}
    assert (
        topology.settings["AIRFLOW__CORE__EXECUTOR"]
        == compose_env["AIRFLOW__CORE__EXECUTOR"]
        == "CeleryExecutor"
    )
    assert topology.settings["AIRFLOW__CORE__AUTH_MANAGER"].endswith("FabAuthManager")
    for key in ("AIRFLOW__ACCEL__SPICEPOD_PATH", "AIRFLOW__ACCEL__DATA_DIR"):
        assert topology.settings[key] == str(native_path(topology.root, compose_env[key]))
    with topology.client() as client:
        pool = client.get("/api/v2/pools/default_pool")
        datasets = client.get("/v1/datasets")
    assert pool.status_code == 200, pool.text
    assert pool.json()["slots"] == int(compose_env["AIRFLOW__CORE__DEFAULT_POOL_TASK_SLOT_COUNT"])
    # The API plugin reads the spicepod at the compose path (mapped under the native root).
    assert {d["name"] for d in datasets.json()} == set(DATASETS)


def test_viewer_is_refused(refreshes: Refreshes) -> None:
    """The FAB viewer gets 403 on POST refresh and no run is created."""
    assert refreshes.viewer_response.status_code == 403, refreshes.viewer_response.text
    assert refreshes.viewer_response.json() == {"message": "Forbidden"}
    assert refreshes.runs_after_viewer == refreshes.runs_before_viewer


def test_every_refresh_succeeded(refreshes: Refreshes) -> None:
    """The initial loads and the three refreshes triggered at once all succeeded with the right row counts."""
    for name, runs in refreshes.initial.items():
        assert [r["state"] for r in runs] == ["success"], (name, runs)
    expected_b = sum(1 for _, _, tip in trips(TRIPS_ROWS["trips_b"]) if tip > 10.0)
    expected = {"trips_a": TRIPS_ROWS["trips_a"], "trips_b": expected_b, "events": EVENT_ROWS}
    for name, status in refreshes.triggered.items():
        assert status["state"] == "success", status
        assert status["error"] is None, status
        assert status["rows"] == status["total_rows"] == expected[name], status


def test_rows_in_the_duckdb_files(topology: Topology, refreshes: Refreshes) -> None:
    """The shared file holds both trips tables, events has its own; contents equal the sources (read-only)."""
    shared = topology.data_dir / SHARED_FILE
    assert sorted(p.name for p in topology.data_dir.glob("*.duckdb")) == ["events.duckdb", SHARED_FILE]
    with duckdb.connect(str(shared), read_only=True) as con:
        assert {t for (t,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()} == {
            "trips_a",
            "trips_b",
        }
        rows_a = con.execute("SELECT trip_id, passenger_count, tip_amount FROM trips_a ORDER BY 1").fetchall()
        rows_b = con.execute("SELECT trip_id, passenger_count, tip_amount FROM trips_b ORDER BY 1").fetchall()
    assert rows_a == trips(TRIPS_ROWS["trips_a"])
    assert rows_b == [t for t in trips(TRIPS_ROWS["trips_b"]) if t[2] > 10.0]
    with duckdb.connect(str(topology.data_dir / "events.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT id, value FROM events ORDER BY 1").fetchall()
    assert rows == [(i, i * 10) for i in range(1, EVENT_ROWS + 1)]


def test_datasets_sharing_a_file_never_wrote_at_the_same_time(
    topology: Topology, refreshes: Refreshes
) -> None:
    """Lock windows and writes of the two datasets sharing a file never overlap, though their runs did."""
    records = _probe(topology)
    worker_pids = {topology.processes[name].pid: name for name in WORKERS}
    shared = str(topology.data_dir / SHARED_FILE)
    locks = [r for r in records if r["kind"] == "lock" and r["path"] == shared]
    writes = [r for r in records if r["kind"] == "write" and r["dataset"] in SHARED]
    # Initial load and on-demand refresh of each: two lock windows per dataset, each with its writes.
    assert sorted(r["dataset"] for r in locks) == sorted(SHARED * 2), locks
    assert all(r["ok"] for r in locks), locks
    for lock in locks:
        inside = [
            w
            for w in writes
            if w["pid"] == lock["pid"] and lock["acquired"] <= w["started"] <= w["ended"] <= lock["released"]
        ]
        assert inside and {w["dataset"] for w in inside} == {lock["dataset"]}, (lock, writes)
    # Every write happened inside a lock window of its own dataset, in the same process.
    for write in writes:
        assert any(
            lock["dataset"] == write["dataset"]
            and lock["pid"] == write["pid"]
            and lock["acquired"] <= write["started"] <= write["ended"] <= lock["released"]
            for lock in locks
        ), write
    # Every refresh ran in a process started by one of the two Celery workers.
    ran_on = {}
    for lock in locks:
        (worker,) = [worker_pids[p] for p in lock["ancestors"] if p in worker_pids] or [None]
        assert worker is not None, (lock, worker_pids)
        ran_on[lock["pid"]] = worker

    # No two refreshes held the lock, or wrote the file, at the same time. (A compaction's rename is
    # recorded inside its compaction, so only writes of different processes are compared.)
    for a, b in itertools.combinations(locks, 2):
        assert a["released"] <= b["acquired"] or b["released"] <= a["acquired"], (a, b)
    for a, b in itertools.combinations(writes, 2):
        if a["pid"] != b["pid"]:
            assert a["ended"] <= b["started"] or b["ended"] <= a["started"], (a, b)

    # The lock did real work: in at least one round (initial loads, triggered refreshes) one refresh
    # asked for the lock while the other held it, i.e. they ran at the same time and one waited, or
    # one found the lock held before asking and was rescheduled to wait without a worker slot.
    ordered = sorted(locks, key=lambda r: r["acquired"])
    rounds = [ordered[:2], ordered[2:]]
    waited = [second["requested"] < first["released"] for first, second in rounds]
    rescheduled = [r for r in records if r["kind"] == "busy" and r["path"] == shared and r["busy"]]
    assert any(waited) or rescheduled, (
        f"no refresh of {SHARED} ever waited for the other: the test did not contend"
    )
    # The triggered refreshes' lock windows lie within their DAG runs (API start/end dates).
    for name in SHARED:
        status = refreshes.triggered[name]
        start, end = _ts(status["start_date"]), _ts(status["end_date"])
        assert any(
            r["dataset"] == name and start <= r["acquired"] and r["released"] <= end for r in rounds[1]
        ), (name, status, rounds[1])
    print(
        "lock windows on the shared file (s, relative):",
        [
            (
                r["dataset"],
                ran_on[r["pid"]],
                round(r["acquired"] - ordered[0]["requested"], 2),
                round(r["released"] - ordered[0]["requested"], 2),
                round(r["acquired"] - r["requested"], 2),
            )
            for r in ordered
        ],
        "waited per round:",
        waited,
    )
