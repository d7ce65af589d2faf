"""OpenLineage events of real refreshes (dag.test), written by the OpenLineage provider's file transport."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow.utils.state import DagRunState
from servers import PG_HOST, PG_PORT, PG_USER

from airflow_provider_accel.dags.factory import load_dags

pytest.importorskip("airflow.providers.openlineage", reason="the [openlineage] extra is not installed")

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


@pytest.fixture
def lineage_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The OpenLineage provider configured with its file transport, appending one event per line."""
    from airflow.listeners.listener import get_listener_manager as core_listeners
    from airflow.providers.openlineage import conf as ol_conf
    from airflow.providers.openlineage.plugins import listener as ol_listener
    from airflow.sdk.listener import get_listener_manager as task_listeners

    path = tmp_path / "openlineage.jsonl"
    transport = {"type": "file", "log_file_path": str(path), "append": True}
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__TRANSPORT", json.dumps(transport))
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__NAMESPACE", "accel-test")
    # The provider caches its settings (is_disabled, transport, namespace ...) once per process, and
    # registers its listener only if it was enabled when the plugins were first loaded: an earlier
    # dag.test() in this session, without a transport, left it disabled and unregistered.
    for setting in vars(ol_conf).values():
        if callable(getattr(setting, "cache_clear", None)):
            setting.cache_clear()
    listener = ol_listener.get_openlineage_listener()
    listener.adapter._client = None
    managers = (core_listeners(), task_listeners())
    for manager in managers:
        manager.add_listener(listener)
    yield path
    # The rest of the session runs without a transport: a listener left behind would try to emit
    # every task event and wait out its timeout.
    for manager in managers:
        if manager.pm.is_registered(listener):
            manager.pm.unregister(listener)
    for setting in vars(ol_conf).values():
        if callable(getattr(setting, "cache_clear", None)):
            setting.cache_clear()


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
    spicepod_env, src_dir: Path, lineage_file: Path
) -> None:
    """A file-sourced dataset's COMPLETE events name the file and the table, with schema, rows and SQL."""
    data_dir = spicepod_env(FILE_SPICEPOD, mode="full")
    write_events(src_dir, range(0, 40))
    assert load_dags()["accelerate_events"].test().state == DagRunState.SUCCESS
    spicepod_env(FILE_SPICEPOD, mode="append")
    write_events(src_dir, range(0, 65))
    assert load_dags()["accelerate_events"].test().state == DagRunState.SUCCESS

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


def test_postgres_refreshes_name_the_server_table(spicepod_env, pg_schema, lineage_file: Path) -> None:
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
    assert load_dags()["accelerate_orders"].test().state == DagRunState.SUCCESS
    for i in range(30, 42):
        conn.execute(
            f'INSERT INTO "{schema}".orders VALUES (%s, %s, %s)', (i, start + dt.timedelta(hours=i), i)
        )
    spicepod_env(PG_SPICEPOD, mode="append", **values)
    assert load_dags()["accelerate_orders"].test().state == DagRunState.SUCCESS

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
    spicepod_env, src_dir: Path, lineage_file: Path
) -> None:
    """A refresh whose source is missing emits FAIL with the source, the table and the error message."""
    spicepod_env(FILE_SPICEPOD.replace("events.csv", "missing.csv"), mode="full")
    dag_run = load_dags()["accelerate_events"].test()
    assert dag_run.state == DagRunState.FAILED
    (failed,) = terminal(lineage_file, "FAIL")
    assert failed["inputs"][0]["name"].endswith("missing.csv")
    assert only_output(failed)["name"] == "main.events"
    message = failed["run"]["facets"]["errorMessage"]["message"]
    assert "missing.csv" in message
