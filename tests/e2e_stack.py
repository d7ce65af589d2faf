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

import json
import os
import shutil
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_accel.testing import LocalAirflow

REPO_ROOT = Path(__file__).resolve().parents[1]
ADMIN = ("admin", "admin-e2e-password")
VIEWER = ("viewer", "viewer-e2e-password")
STARTUP_TIMEOUT = 240.0


class AirflowStack(LocalAirflow):
    """The e2e deployment, with a bearer token of the admin and of the viewer user."""

    @property
    def spicepod_path(self) -> Path:
        return self.home / "spicepod.yaml"

    @property
    def data_dir(self) -> Path:
        return self.home / "accel"

    @property
    def source_dir(self) -> Path:
        return self.home / "src"

    # -- HTTP ---------------------------------------------------------------------------------------

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
def airflow_stack(migrated_airflow_db: Any) -> Iterator[AirflowStack]:
    """The deployment; its metadata DB a copy of the session's migrated one (``migrated_airflow_db``)."""
    home = Path(tempfile.mkdtemp(prefix="accel-e2e-home-"))
    source_dir = home / "src"
    source_dir.mkdir()
    write_trips(source_dir)
    write_events(source_dir, "drop1", range(1, 11))
    dag_file = REPO_ROOT / "dags" / "accelerated_datasets.py"
    if not dag_file.exists():
        pytest.fail(f"{dag_file} is missing: the e2e tests need the project's DAG file")
    stack = AirflowStack.create(
        home,
        dag_file=dag_file,
        passwords=dict([ADMIN, VIEWER]),
        roles={"admin": "admin", "viewer": "viewer"},
        secret="accel-e2e",
        pythonpath=REPO_ROOT,
    )
    stack.write_spicepod(E2E_SPICEPOD)
    try:
        stack.start_all(STARTUP_TIMEOUT)
        stack.tokens["admin"] = stack.token(*ADMIN)
        stack.tokens["viewer"] = stack.token(*VIEWER)
        yield stack
    finally:
        stack.stop()
        if os.environ.get("ACCEL_E2E_KEEP_HOME"):
            print(f"e2e AIRFLOW_HOME kept at {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)
