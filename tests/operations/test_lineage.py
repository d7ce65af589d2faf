"""OpenLineage events of real refreshes (`airflow dags test`), written by the file transport."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow.utils.state import DagRunState
from servers import PG_HOST, PG_PORT, PG_USER

pytest.importorskip("airflow.providers.openlineage", reason="the [openlineage] extra is not installed")

# The refreshes run in a worker process of their own (see LineageWorker).
pytestmark = pytest.mark.processes
WORKER = Path(__file__).parent / "scripts" / "lineage_worker.py"

FILE_SPICEPOD = """
version: v1
kind: Spicepod
name: lineage
datasets:
  - from: file:{src}/events.csv
    name: events
    params: {{file_format: csv}}
    time_column: ts
    acceleration:
      enabled: true
      refresh_mode: {mode}
      refresh_sql: SELECT id, ts, value FROM events WHERE value >= 0
"""

PG_SPICEPOD = """
version: v1
kind: Spicepod
name: lineage
datasets:
  - from: postgres:{schema}.orders
    name: orders
    params: {{pg_host: {host}, pg_port: "{port}", pg_user: {user}, pg_db: test, pg_sslmode: disable}}
    time_column: created_at
    acceleration:
      enabled: true
      refresh_mode: {mode}
"""


class LineageWorker:
    """``scripts/lineage_worker.py``: one process with the OpenLineage file transport, running refreshes.

    Not this session's process: the OpenLineage provider decides once per process whether it is on,
    and an earlier dag.test() here, without a transport, has already decided it is off.
    """

    def __init__(self, events: Path) -> None:
        self.events = events
        env = dict(os.environ)
        transport = {"type": "file", "log_file_path": str(events), "append": True}
        env["AIRFLOW__OPENLINEAGE__TRANSPORT"] = json.dumps(transport)
        env["AIRFLOW__OPENLINEAGE__NAMESPACE"] = "accel-test"
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._answer("READY")

    def _answer(self, prefix: str) -> str:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(prefix):
                return line[len(prefix) :].strip()
        raise AssertionError(f"the lineage worker ended (exit {self.proc.wait()}) before {prefix!r}")

    def run(self, dag_id: str) -> DagRunState:
        """One run of ``dag_id`` with this test's spicepod and data dir; the run's state."""
        assert self.proc.stdin is not None
        names = ("AIRFLOW__ACCEL__SPICEPOD_PATH", "AIRFLOW__ACCEL__DATA_DIR")
        self.proc.stdin.write(json.dumps({"dag_id": dag_id, "env": {n: os.environ[n] for n in names}}) + "\n")
        self.proc.stdin.flush()
        state = self._answer("RESULT ")
        assert not state.startswith("error"), f"{dag_id} did not run: {state}"
        return DagRunState(state)

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


@pytest.fixture(scope="module")
def lineage_worker(airflow_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LineageWorker]:
    worker = LineageWorker(tmp_path_factory.mktemp("lineage") / "openlineage.jsonl")
    try:
        yield worker
    finally:
        worker.close()


@pytest.fixture
def lineage_file(lineage_worker: LineageWorker) -> Path:
    """The worker's events file, emptied: the events of this test's runs only, one per line."""
    lineage_worker.events.write_text("")
    return lineage_worker.events


@pytest.fixture
def run_refresh(lineage_worker: LineageWorker, accel_dag_file: Path) -> Any:
    return lineage_worker.run


def events(path: Path, job_suffix: str = "refresh") -> list[dict[str, Any]]:
    if not path.exists():
        return []
    found = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [e for e in found if e["job"]["name"].endswith(f".{job_suffix}")]


def terminal(path: Path, state: str) -> list[dict[str, Any]]:
    return [e for e in events(path) if e["eventType"] == state]


def write_events(src: Path, ids: range) -> None:
    src.mkdir(parents=True, exist_ok=True)
    lines = ["id,ts,value"] + [f"{i},2024-01-01 {i // 60:02d}:{i % 60:02d}:00,{i}" for i in ids]
    (src / "events.csv").write_text("\n".join(lines) + "\n")


def only_output(event: dict[str, Any]) -> dict[str, Any]:
    (output,) = event["outputs"]
    return output


def test_file_full_and_append_refresh_report_source_table_schema_and_rows(
    spicepod_env, src_dir: Path, lineage_file: Path, run_refresh
) -> None:
    """A file-sourced dataset's COMPLETE events name the file and the table, with schema, rows and SQL."""
    data_dir = spicepod_env(FILE_SPICEPOD, mode="full")
    write_events(src_dir, range(0, 40))
    assert run_refresh("accelerate_events") == DagRunState.SUCCESS
    spicepod_env(FILE_SPICEPOD, mode="append")
    write_events(src_dir, range(0, 65))
    assert run_refresh("accelerate_events") == DagRunState.SUCCESS

    full, append = terminal(lineage_file, "COMPLETE")
    for event in (full, append):
        (source,) = event["inputs"]
        assert (source["namespace"], source["name"]) == ("file", str((src_dir / "events.csv").resolve()))
        output = only_output(event)
        assert output["namespace"] == f"duckdb://{(data_dir / 'events.duckdb').resolve()}"
        assert output["name"] == "main.events"
        fields = [(f["name"], f["type"]) for f in output["facets"]["schema"]["fields"]]
        assert [name for name, _ in fields] == ["id", "ts", "value"]
        assert event["job"]["facets"]["sql"]["query"] == "SELECT id, ts, value FROM events WHERE value >= 0"
    assert only_output(full)["outputFacets"]["outputStatistics"]["rowCount"] == 40
    assert only_output(append)["outputFacets"]["outputStatistics"]["rowCount"] == 25
    assert only_output(full)["outputFacets"]["outputStatistics"]["size"] > 0
    refresh = append["run"]["facets"]["accelerationRefresh"]
    assert refresh["mode"] == "append" and refresh["watermark"].startswith("2024-01-01 01:04")
    assert refresh["total_rows"] == 65
    assert full["run"]["facets"]["accelerationRefresh"].get("watermark") is None


def test_postgres_refreshes_name_the_server_table(
    spicepod_env, pg_schema, lineage_file: Path, run_refresh
) -> None:
    """A PostgreSQL-sourced dataset's input is postgres://host:port with db.schema.table; rows as loaded."""
    conn, schema = pg_schema
    conn.execute(f'CREATE TABLE "{schema}".orders (id int, created_at timestamp, amount numeric(10,2))')
    start = dt.datetime(2024, 1, 1)
    for i in range(30):
        conn.execute(
            f'INSERT INTO "{schema}".orders VALUES (%s, %s, %s)', (i, start + dt.timedelta(hours=i), i)
        )
    values = {"schema": schema, "host": PG_HOST, "port": PG_PORT, "user": PG_USER}
    spicepod_env(PG_SPICEPOD, mode="full", **values)
    assert run_refresh("accelerate_orders") == DagRunState.SUCCESS
    for i in range(30, 42):
        conn.execute(
            f'INSERT INTO "{schema}".orders VALUES (%s, %s, %s)', (i, start + dt.timedelta(hours=i), i)
        )
    spicepod_env(PG_SPICEPOD, mode="append", **values)
    assert run_refresh("accelerate_orders") == DagRunState.SUCCESS

    full, append = terminal(lineage_file, "COMPLETE")
    for event in (full, append):
        (source,) = event["inputs"]
        assert source["namespace"] == f"postgres://{PG_HOST}:{PG_PORT}"
        assert source["name"] == f"test.{schema}.orders"
        fields = [f["name"] for f in only_output(event)["facets"]["schema"]["fields"]]
        assert fields == ["id", "created_at", "amount"]
    assert only_output(full)["outputFacets"]["outputStatistics"]["rowCount"] == 30
    assert only_output(append)["outputFacets"]["outputStatistics"]["rowCount"] == 12
    assert append["run"]["facets"]["accelerationRefresh"]["watermark"].startswith("2024-01-02 17:00")


def test_failed_refresh_emits_a_fail_event_with_the_error(
    spicepod_env, src_dir: Path, lineage_file: Path, run_refresh
) -> None:
    """A refresh whose source is missing emits FAIL with the source, the table and the error message."""
    spicepod_env(FILE_SPICEPOD.replace("events.csv", "missing.csv"), mode="full")
    assert run_refresh("accelerate_events") == DagRunState.FAILED
    (failed,) = terminal(lineage_file, "FAIL")
    assert failed["inputs"][0]["name"].endswith("missing.csv")
    assert only_output(failed)["name"] == "main.events"
    message = failed["run"]["facets"]["errorMessage"]["message"]
    assert "missing.csv" in message
