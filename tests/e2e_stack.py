"""A real Airflow deployment for end-to-end tests: api-server, scheduler, dag-processor and triggerer.

The session fixture :func:`airflow_stack` starts the four processes on a temporary ``AIRFLOW_HOME``
(SQLite metadata DB, LocalExecutor, the simple auth manager with known passwords, free ports), with
the project's real DAG file and the ``accel`` plugin, waits until they report healthy, and stops
their process groups at the end of the session. Tests talk to it over HTTP only.

It is shared by every test of the session that needs a deployment (tests/e2e, tests/reliability,
tests/ui): ``tests/conftest.py`` registers the fixture once, so the stack starts once. The spicepod
is a file tests may rewrite (:meth:`AirflowStack.write_spicepod`; the dag-processor re-parses within
seconds); a test module that rewrites it restores :data:`E2E_SPICEPOD` when it is done.
:meth:`AirflowStack.trigger` / :meth:`AirflowStack.wait_for_refresh` cover the usual flow.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import tempfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from _airflow_processes import (
    AIRFLOW_BIN,
    free_port,
    log_tail,
    start_airflow,
    stop_process_groups,
    wait_healthy,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
ADMIN = ("admin", "admin-e2e-password")
VIEWER = ("viewer", "viewer-e2e-password")
STARTUP_TIMEOUT = 240.0
PROCESSES = ("api-server", "scheduler", "dag-processor", "triggerer")


def _plugin_installed() -> bool:
    return any(ep.name == "accel" for ep in importlib.metadata.entry_points(group="airflow.plugins"))


@dataclass
class AirflowStack:
    """A running Airflow on ``base_url``, with a bearer token of the admin user."""

    home: Path
    base_url: str
    env: dict[str, str]
    spicepod_path: Path
    data_dir: Path
    source_dir: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    # -- HTTP ---------------------------------------------------------------------------------------

    def client(self, user: str | None = "admin") -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[user]}"} if user else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30.0)

    def token(self, username: str, password: str) -> str:
        response = httpx.post(
            f"{self.base_url}/auth/token", json={"username": username, "password": password}, timeout=30
        )
        response.raise_for_status()
        return response.json()["access_token"]

    def trigger(self, name: str, body: Any = None, *, wait_parsed: float = 120.0) -> dict[str, Any]:
        """POST a refresh; retries while the API answers 503 (the DAG is not parsed yet)."""
        deadline = time.monotonic() + wait_parsed
        with self.client() as client:
            while True:
                response = client.post(
                    f"/v1/datasets/{name}/acceleration/refresh",
                    content=b"" if body is None else json.dumps(body).encode(),
                    headers={"Content-Type": "application/json"},
                )
                if response.status_code != 503 or time.monotonic() > deadline:
                    break
                time.sleep(2)
        assert response.status_code == 201, f"{response.status_code} {response.text}"
        return response.json()

    def refresh_status(self, name: str, run_id: str) -> dict[str, Any]:
        with self.client() as client:
            response = client.get(f"/v1/datasets/{name}/acceleration/refresh/{run_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def wait_for_refresh(self, name: str, run_id: str, timeout: float = 180.0) -> dict[str, Any]:
        """Poll the status route until the run finished; the last status body."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.refresh_status(name, run_id)
            if status["state"] in ("success", "failed"):
                return status
            if time.monotonic() > deadline:
                raise AssertionError(f"refresh {run_id} of {name} still {status['state']}\n{self.log_tail()}")
            time.sleep(1)

    def wait_for_idle(self, dag_id: str, timeout: float = 180.0) -> None:
        """Wait until the DAG exists and has no queued or running run (e.g. its initial load)."""
        deadline = time.monotonic() + timeout
        with self.client() as client:
            while time.monotonic() < deadline:
                runs = client.get(f"/api/v2/dags/{dag_id}/dagRuns", params={"state": ["queued", "running"]})
                dag = client.get(f"/api/v2/dags/{dag_id}")
                if dag.status_code == 200 and runs.status_code == 200 and runs.json()["total_entries"] == 0:
                    return
                time.sleep(1)
        raise AssertionError(f"{dag_id} not idle after {timeout}s\n{self.log_tail()}")

    def dag_run_count(self, dag_id: str) -> int:
        with self.client() as client:
            response = client.get(f"/api/v2/dags/{dag_id}/dagRuns")
        return response.json()["total_entries"] if response.status_code == 200 else 0

    # -- files --------------------------------------------------------------------------------------

    def write_spicepod(self, text: str) -> None:
        self.spicepod_path.write_text(textwrap.dedent(text).format(src=self.source_dir))

    def write_events(self, name: str, ids: range) -> None:
        """Add a CSV drop to the ``events`` source directory."""
        write_events(self.source_dir, name, ids)

    def log_tail(self, lines: int = 60) -> str:
        return log_tail(self.home, PROCESSES, lines)

    # -- processes ----------------------------------------------------------------------------------

    def start(self, name: str, *args: str) -> None:
        self.processes[name] = start_airflow(self.home, name, [name, *args], self.env, self.home)

    def stop(self) -> None:
        stop_process_groups(self.processes.values())

    def wait_healthy(self) -> None:
        wait_healthy(self.base_url, self.processes, STARTUP_TIMEOUT, describe=self.log_tail)


#: The spicepod the stack starts with. ``{src}`` is the source data directory.
E2E_SPICEPOD = """\
version: v1
kind: Spicepod
name: e2e
datasets:
  - from: file:{src}/trips.csv
    name: trips
    params:
      file_format: csv
    acceleration:
      enabled: true
      refresh_mode: full
  - from: file:{src}/events
    name: events
    params:
      file_format: csv
    time_column: ts
    acceleration:
      enabled: true
      refresh_mode: full
"""


def write_trips(source_dir: Path, count: int = 200) -> list[dict[str, Any]]:
    """A deterministic trips CSV: id, passenger_count, tip_amount (every 7th tip above 10)."""
    rows = [
        {"trip_id": i, "passenger_count": 1 + i % 4, "tip_amount": round((i * 37) % 150 / 10, 1)}
        for i in range(1, count + 1)
    ]
    lines = ["trip_id,passenger_count,tip_amount"] + [
        f"{r['trip_id']},{r['passenger_count']},{r['tip_amount']}" for r in rows
    ]
    (source_dir / "trips.csv").write_text("\n".join(lines) + "\n")
    return rows


def write_events(source_dir: Path, name: str, ids: range) -> None:
    """One CSV drop of events, one minute apart, later ids later in time."""
    directory = source_dir / "events"
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["id,ts,value"] + [f"{i},2024-01-01 {i // 60:02d}:{i % 60:02d}:00,{i * 10}" for i in ids]
    (directory / f"{name}.csv").write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="session")
def airflow_stack() -> Iterator[AirflowStack]:
    home = Path(tempfile.mkdtemp(prefix="accel-e2e-home-"))
    source_dir = home / "src"
    source_dir.mkdir()
    write_trips(source_dir)
    write_events(source_dir, "drop1", range(1, 11))
    dags = home / "dags"
    dags.mkdir()
    dag_file = REPO_ROOT / "dags" / "accelerated_datasets.py"
    if not dag_file.exists():
        pytest.fail(f"{dag_file} is missing: the e2e tests need the project's DAG file")
    shutil.copy(dag_file, dags / "accelerated_datasets.py")
    plugins = home / "plugins"
    plugins.mkdir()
    if not _plugin_installed():
        (plugins / "accel_plugin.py").write_text(
            "from airflow_provider_accel.plugin import AccelerationPlugin  # noqa: F401\n"
        )
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps(dict([ADMIN, VIEWER])))

    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__") and k != "AIRFLOW_HOME"}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")])),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,viewer:viewer",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__API__BASE_URL": base_url,
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            # One secret for every process: tasks get execution-API tokens signed by the scheduler.
            "AIRFLOW__API_AUTH__JWT_SECRET": "accel-e2e-jwt-secret-" + "x" * 48,
            "AIRFLOW__API__SECRET_KEY": "accel-e2e-secret-key",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__ACCEL__SPICEPOD_PATH": str(home / "spicepod.yaml"),
            "AIRFLOW__ACCEL__DATA_DIR": str(home / "accel"),
        }
    )
    stack = AirflowStack(
        home=home,
        base_url=base_url,
        env=env,
        spicepod_path=home / "spicepod.yaml",
        data_dir=home / "accel",
        source_dir=source_dir,
    )
    stack.write_spicepod(E2E_SPICEPOD)

    migrate = subprocess.run(
        [str(AIRFLOW_BIN), "db", "migrate"], env=env, cwd=home, capture_output=True, text=True, timeout=300
    )
    assert migrate.returncode == 0, migrate.stdout[-3000:] + migrate.stderr[-3000:]
    try:
        # One api-server worker: with SQLite, see airflow_provider_accel.api.service on locking.
        stack.start("api-server", "--port", str(port), "--host", "127.0.0.1", "--workers", "1")
        stack.start("scheduler")
        stack.start("dag-processor")
        stack.start("triggerer")
        stack.wait_healthy()
        stack.tokens["admin"] = stack.token(*ADMIN)
        stack.tokens["viewer"] = stack.token(*VIEWER)
        yield stack
    finally:
        stack.stop()
        if os.environ.get("ACCEL_E2E_KEEP_HOME"):
            print(f"e2e AIRFLOW_HOME kept at {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)
