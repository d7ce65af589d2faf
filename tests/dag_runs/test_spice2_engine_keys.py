"""Spice 2.x keys the engine acts on (indexes, retention_sql, on_schema_change), through real DAG runs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
from airflow.utils.state import DagRunState

from airflow_provider_accel.dags.factory import load_dags

from ._support import count_rows, write_drop

START = dt.datetime(2024, 1, 1)

SPICEPOD = """
version: v2
kind: Spicepod
name: spice2keys
datasets:
  - from: file:{src}
    name: trips
    params: {{file_format: parquet}}
    time_column: pickup
    on_schema_change: append_new_columns
    acceleration:
      enabled: true
      refresh_mode: full
      indexes:
        id: unique
      retention_check_enabled: true
      retention_check_interval: 1h
      retention_sql: DELETE FROM trips WHERE fare >= 40
"""


def test_refresh_and_retention_dags_apply_indexes_and_retention_sql(spicepod_env, src_dir: Path) -> None:
    """The refresh DAG indexes the table and evicts retention_sql rows; the retention DAG applies it alone."""
    data_dir = spicepod_env(SPICEPOD)
    write_drop(src_dir, "a", range(100), START)  # fare = id % 50: 20 rows have fare >= 40
    dags = load_dags()
    assert dags["accelerate_trips"].test().state == DagRunState.SUCCESS
    path = data_dir / "trips.duckdb"
    assert count_rows(path, "trips") == 80
    with duckdb.connect(str(path), read_only=True) as con:
        indexes = con.execute("SELECT expressions, is_unique FROM duckdb_indexes()").fetchall()
    assert indexes == [("[id]", True)]
    # Rows that enter the file another way (here: an edit) are evicted by the retention DAG.
    with duckdb.connect(str(path)) as con:
        con.execute("UPDATE trips SET fare = 45 WHERE id < 5")
    assert dags["accelerate_trips__retention"].test().state == DagRunState.SUCCESS
    assert count_rows(path, "trips") == 75


def test_refresh_dag_fails_on_unique_violation_keeping_data(spicepod_env, src_dir: Path) -> None:
    """A source breaking the unique index fails the run; the accelerated rows stay as they were."""
    data_dir = spicepod_env(SPICEPOD)
    write_drop(src_dir, "a", range(100), START)
    dag = load_dags()["accelerate_trips"]
    assert dag.test().state == DagRunState.SUCCESS
    write_drop(src_dir, "b", range(10), START)  # ids 0-9 again
    assert dag.test().state == DagRunState.FAILED
    assert count_rows(data_dir / "trips.duckdb", "trips") == 80
