"""AccelerationRefreshOperator on real Airflow (dag.test) with real DuckDB files."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import duckdb
import pytest
from airflow.models.taskinstance import TaskInstance
from airflow.sdk.exceptions import TaskDeferred
from airflow.utils.session import create_session
from airflow.utils.state import DagRunState
from sqlalchemy import func, select

from airflow_provider_accel.dags.factory import load_dags
from airflow_provider_accel.operators.refresh import ERROR_XCOM_KEY

from ._support import count_rows, write_drop

START = dt.datetime(2024, 1, 1)

FULL_SPICEPOD = """
version: v1
kind: Spicepod
name: optest
datasets:
  - from: file:{src}
    name: trips
    params: {{file_format: parquet}}
    time_column: pickup
    acceleration:
      enabled: true
      refresh_mode: full
      refresh_retry_max_attempts: 2
"""

APPEND_SPICEPOD = """
version: v1
kind: Spicepod
name: optest
datasets:
  - from: file:{src}
    name: trips
    params: {{file_format: parquet}}
    time_column: pickup
    acceleration:
      enabled: true
      refresh_mode: append
      refresh_append_overlap: 10m
"""


def _task_instance(dag_run) -> TaskInstance:
    with create_session() as session:
        return (
            session.query(TaskInstance)
            .filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id, task_id="refresh")
            .one()
        )


def _xcom(dag_run, key: str = "return_value"):
    from airflow.models.xcom import XComModel

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id, task_id="refresh", key=key)
            .one_or_none()
        )
        return None if row is None else XComModel.deserialize_value(row)


class TestFullRefresh:
    def test_scheduled_full_refresh_loads_every_row(self, spicepod_env, src_dir: Path) -> None:
        """A run without conf loads the whole source and returns Spice's summary as XCom."""
        data_dir = spicepod_env(FULL_SPICEPOD)
        write_drop(src_dir, "a", range(100), START)
        dag_run = load_dags()["accelerate_trips"].test()
        assert dag_run.state == DagRunState.SUCCESS
        assert count_rows(data_dir / "trips.duckdb", "trips") == 100
        summary = _xcom(dag_run)
        assert summary["rows"] == 100 and summary["total_rows"] == 100 and summary["mode"] == "full"
        assert summary["watermark"].startswith("2024-01-01 01:39")

    def test_override_sql_applies_to_that_run_only(self, spicepod_env, src_dir: Path) -> None:
        """refresh_sql in the run conf filters that run; the next plain run loads everything again."""
        data_dir = spicepod_env(FULL_SPICEPOD)
        write_drop(src_dir, "a", range(100), START)
        dag = load_dags()["accelerate_trips"]
        dag_run = dag.test(run_conf={"refresh_sql": "SELECT id, fare FROM trips WHERE fare > 40"})
        assert dag_run.state == DagRunState.SUCCESS
        path = data_dir / "trips.duckdb"
        with duckdb.connect(str(path), read_only=True) as con:
            assert [c[0] for c in con.execute("DESCRIBE trips").fetchall()] == ["id", "fare"]
        assert count_rows(path, "trips") == 18  # fares 41..49 twice in 0..99
        assert dag.test().state == DagRunState.SUCCESS
        assert count_rows(path, "trips") == 100

    def test_asset_event_carries_the_summary(self, spicepod_env, src_dir: Path) -> None:
        """A successful refresh emits an asset event for the dataset whose extra is the summary."""
        from airflow.models.asset import AssetEvent, AssetModel

        spicepod_env(FULL_SPICEPOD)
        write_drop(src_dir, "a", range(10), START)
        dag_run = load_dags()["accelerate_trips"].test()
        with create_session() as session:
            event = (
                session.query(AssetEvent)
                .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
                .filter(AssetModel.name == "accel_trips", AssetEvent.source_run_id == dag_run.run_id)
                .one()
            )
            assert event.extra["rows"] == 10 and event.extra["dataset"] == "trips"


class TestAppendRefresh:
    def test_append_across_drops_with_overlap_has_no_duplicates(self, spicepod_env, src_dir: Path) -> None:
        """Drops that re-deliver rows inside the overlap add only the new rows."""
        data_dir = spicepod_env(APPEND_SPICEPOD)
        dag = load_dags()["accelerate_trips"]
        write_drop(src_dir, "a", range(50), START)
        assert dag.test().state == DagRunState.SUCCESS
        # b re-delivers ids 45..49 (inside the 10 minute overlap) plus 30 new rows.
        write_drop(src_dir, "b", range(45, 80), START + dt.timedelta(minutes=45))
        dag_run = dag.test()
        assert dag_run.state == DagRunState.SUCCESS
        path = data_dir / "trips.duckdb"
        assert count_rows(path, "trips") == 80
        with duckdb.connect(str(path), read_only=True) as con:
            assert con.execute("SELECT count(DISTINCT id) FROM trips").fetchall()[0][0] == 80
        assert _xcom(dag_run)["rows"] == 30

    def test_on_demand_append_without_time_filter_adds_excluded_rows(
        self, spicepod_env, src_dir: Path
    ) -> None:
        """A filtered full refresh then an on-demand append of the excluded rows gives every row."""
        data_dir = spicepod_env(FULL_SPICEPOD)
        write_drop(src_dir, "a", range(20), START)
        dag = load_dags()["accelerate_trips"]
        assert dag.test(run_conf={"refresh_sql": "SELECT * FROM trips WHERE id < 10"}).state == "success"
        assert count_rows(data_dir / "trips.duckdb", "trips") == 10
        assert (
            dag.test(
                run_conf={"refresh_mode": "append", "refresh_sql": "SELECT * FROM trips WHERE id >= 10"}
            ).state
            == DagRunState.SUCCESS
        )
        assert count_rows(data_dir / "trips.duckdb", "trips") == 20


class TestRejectedRuns:
    @pytest.mark.parametrize(
        ("conf", "phrase"),
        [
            ({"refresh_sql": "SELECT * FROM other_table"}, "must be the dataset trips"),
            ({"refresh_jitter_max": "soon"}, "refresh_jitter_max"),
            ({"refresh_sql": "SELECT * FROM trips; DROP TABLE trips"}, "single SQL statement"),
        ],
    )
    def test_trigger_form_refuses_invalid_sql_and_jitter_with_the_validator_message(
        self, spicepod_env, conf: dict, phrase: str
    ) -> None:
        """An invalid refresh_sql or jitter is refused by the DAG's params, with the validator's words."""
        from airflow.models.dagrun import DagRun
        from airflow.sdk.exceptions import ParamValidationError

        spicepod_env(FULL_SPICEPOD)
        dag = load_dags()["accelerate_trips"]
        with create_session() as session:
            runs_before = session.query(DagRun).filter_by(dag_id=dag.dag_id).count()
        with pytest.raises(ParamValidationError, match=phrase):
            dag.test(run_conf=conf)
        with create_session() as session:
            assert session.query(DagRun).filter_by(dag_id=dag.dag_id).count() == runs_before

    @pytest.mark.parametrize(
        ("conf", "phrase"),
        [
            ({"refresh_sql": "SELECT * FROM other_table"}, "must be the dataset trips"),
            ({"refresh_jitter_max": "soon"}, "refresh_jitter_max"),
            ({"refresh_mode": "changes"}, "cannot be refreshed on demand"),
            ({"refresh_sql": "SELECT 1", "extra": True}, "Unknown field"),
        ],
    )
    def test_operator_fails_at_once_on_invalid_conf(self, spicepod_env, conf: dict, phrase: str) -> None:
        """A conf that bypassed the form (e.g. a format unknown to that process) fails without retry."""
        from airflow.sdk.exceptions import AirflowFailException

        spicepod_env(FULL_SPICEPOD)
        task = load_dags()["accelerate_trips"].get_task("refresh")

        class _Run:
            run_type = "manual"

        _Run.conf = conf
        with pytest.raises(AirflowFailException, match=phrase):
            task.execute({"dag_run": _Run()})

    @pytest.mark.parametrize("mode", ["changes", "caching", "disabled", "sideways"])
    def test_trigger_form_refuses_modes_other_than_full_and_append(self, spicepod_env, mode: str) -> None:
        """The DAG's typed params refuse a mode that cannot run on demand before any run is created."""
        from airflow.models.dagrun import DagRun
        from airflow.sdk.exceptions import ParamValidationError

        spicepod_env(FULL_SPICEPOD)
        dag = load_dags()["accelerate_trips"]
        with create_session() as session:
            runs_before = session.query(DagRun).filter_by(dag_id=dag.dag_id).count()
        with pytest.raises(ParamValidationError, match="refresh_mode"):
            dag.test(run_conf={"refresh_mode": mode})
        with create_session() as session:
            assert session.query(DagRun).filter_by(dag_id=dag.dag_id).count() == runs_before

    def test_terminal_error_fails_at_once_with_error_xcom(self, spicepod_env, src_dir: Path) -> None:
        """A source column the refresh_sql names but the source lacks: failed on try 1, message kept."""
        data_dir = spicepod_env(FULL_SPICEPOD)
        write_drop(src_dir, "a", range(30), START)
        dag = load_dags()["accelerate_trips"]
        assert dag.test().state == DagRunState.SUCCESS
        dag_run = dag.test(run_conf={"refresh_sql": "SELECT * FROM trips WHERE tip_amount > 1"})
        assert dag_run.state == DagRunState.FAILED
        assert _task_instance(dag_run).try_number == 1
        assert "tip_amount" in _xcom(dag_run, ERROR_XCOM_KEY)
        assert count_rows(data_dir / "trips.duckdb", "trips") == 30

    def test_transient_error_is_retried_up_to_max_attempts(
        self, spicepod_env, src_dir: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A locked file is transient: retried until refresh_retry_max_attempts (2), then failed."""
        from airflow_provider_accel.accelerator.layout import writer_lock

        data_dir = spicepod_env(FULL_SPICEPOD)
        write_drop(src_dir, "a", range(30), START)
        monkeypatch.setenv("AIRFLOW__ACCEL__LOCK_TIMEOUT", "0.2")
        dag = load_dags()["accelerate_trips"]
        with writer_lock(data_dir / "trips.duckdb", timeout=1):
            dag_run = dag.test()
        assert dag_run.state == DagRunState.FAILED
        ti = _task_instance(dag_run)
        assert ti.try_number == 2
        assert "another refresh has been writing" in _xcom(dag_run, ERROR_XCOM_KEY)


class TestJitter:
    def test_jitter_defers_to_a_datetime_trigger_within_bound(self, spicepod_env, src_dir: Path) -> None:
        """With refresh_jitter_max the task defers (no worker slot) until a moment in [now, now+max)."""
        from airflow.providers.standard.triggers.temporal import DateTimeTrigger

        spicepod_env(FULL_SPICEPOD)
        task = load_dags()["accelerate_trips"].get_task("refresh")

        class _Run:
            conf = {"refresh_jitter_max": "30s"}
            run_type = "manual"

        before = dt.datetime.now(dt.UTC)
        with pytest.raises(TaskDeferred) as deferred:
            task.execute({"dag_run": _Run()})
        after = dt.datetime.now(dt.UTC)
        trigger = deferred.value.trigger
        assert isinstance(trigger, DateTimeTrigger)
        assert before <= trigger.moment < after + dt.timedelta(seconds=30)
        assert deferred.value.method_name == "execute_after_jitter"

    def test_jittered_run_completes_the_refresh(self, spicepod_env, src_dir: Path) -> None:
        """A run with jitter resumes after its trigger fires and loads the data."""
        data_dir = spicepod_env(FULL_SPICEPOD)
        write_drop(src_dir, "a", range(12), START)
        dag_run = load_dags()["accelerate_trips"].test(run_conf={"refresh_jitter_max": "500ms"})
        assert dag_run.state == DagRunState.SUCCESS
        assert count_rows(data_dir / "trips.duckdb", "trips") == 12


SQLITE_SPICEPOD = """
version: v1
kind: Spicepod
name: optest
datasets:
  - from: file:{src}
    name: trips
    params: {{file_format: parquet}}
    time_column: pickup
    acceleration:
      enabled: true
      engine: sqlite
      mode: memory
      refresh_mode: append
      params: {{busy_timeout: 2s}}
"""


class TestOtherEngines:
    def test_sqlite_dataset_runs_through_its_dag(self, spicepod_env, src_dir: Path) -> None:
        """engine: sqlite runs through the same DAG: first run loads, a second appends only new rows."""
        import sqlite3

        data_dir = spicepod_env(SQLITE_SPICEPOD)
        write_drop(src_dir, "a", range(100), START)
        dag = load_dags()["accelerate_trips"]
        assert dag.test().state == DagRunState.SUCCESS
        write_drop(src_dir, "b", range(100, 130), START + dt.timedelta(hours=3))
        dag_run = dag.test()
        assert dag_run.state == DagRunState.SUCCESS
        summary = _xcom(dag_run)
        assert summary["mode"] == "append" and summary["rows"] == 30 and summary["total_rows"] == 130
        with sqlite3.connect(data_dir / "trips.sqlite") as con:
            assert con.execute("SELECT count(*) FROM trips").fetchone()[0] == 130

    def test_postgres_dataset_runs_through_its_dag(self, spicepod_env, src_dir: Path) -> None:
        """engine: postgres runs through the same DAG into pg_schema.trips; the summary names the server."""
        import uuid

        import adbc_driver_postgresql.dbapi as pg
        import servers

        servers.require_server("PostgreSQL", servers.PG_HOST, servers.PG_PORT)
        schema = f"accel_dag_{uuid.uuid4().hex[:10]}"
        pod = SQLITE_SPICEPOD.replace("engine: sqlite", "engine: postgres").replace(
            "params: {{busy_timeout: 2s}}",
            f"params: {{{{pg_host: {servers.PG_HOST}, pg_port: {servers.PG_PORT}, "
            f"pg_user: {servers.PG_USER}, pg_sslmode: disable, pg_schema: {schema}}}}}",
        )
        uri = f"postgresql://{servers.PG_USER}@{servers.PG_HOST}:{servers.PG_PORT}/postgres?sslmode=disable"
        spicepod_env(pod)
        write_drop(src_dir, "a", range(100), START)
        try:
            dag_run = load_dags()["accelerate_trips"].test()
            assert dag_run.state == DagRunState.SUCCESS
            assert _xcom(dag_run)["path"].endswith(f"/postgres.{schema}.trips")
            with pg.connect(uri) as con, con.cursor() as cur:
                cur.execute(f"SELECT count(*) FROM {schema}.trips")
                assert cur.fetchone()[0] == 100
        finally:
            with pg.connect(uri) as con, con.cursor() as cur:
                cur.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
                con.commit()


class TestBusyFile:
    @pytest.mark.parametrize("engine", ["duckdb", "sqlite"])
    def test_refresh_waits_rescheduled_without_a_pool_slot(
        self, engine: str, spicepod_env, src_dir: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A refresh finding its file's writer lock held is UP_FOR_RESCHEDULE, holding no pool slot."""
        import threading

        from airflow.models.pool import Pool
        from airflow.utils.state import TaskInstanceState

        from airflow_provider_accel.accelerator.layout import writer_lock
        from airflow_provider_accel.accelerator.pool import POOL_NAME, ensure_refresh_pool

        pod = FULL_SPICEPOD.replace(
            "      refresh_mode: full", f"      engine: {engine}\n      refresh_mode: full"
        )
        data_dir = spicepod_env(pod)
        live = data_dir / f"trips.{engine}"
        write_drop(src_dir, "a", range(30), START)
        monkeypatch.setenv("AIRFLOW__ACCEL__LOCK_TIMEOUT", "60")
        ensure_refresh_pool(4)
        dag = load_dags()["accelerate_trips"]
        held, seen, done = threading.Event(), [], threading.Event()

        def hold_then_release() -> None:
            # Another writer of the file; it lets go once the refresh was seen waiting (or after 120 s).
            with writer_lock(live, timeout=5):
                held.set()
                while not done.wait(1.0):
                    with create_session() as session:
                        waiting = session.scalar(  # earlier tests' runs of this DAG have finished
                            select(func.count()).where(
                                TaskInstance.dag_id == "accelerate_trips",
                                TaskInstance.state == TaskInstanceState.UP_FOR_RESCHEDULE,
                            )
                        )
                        occupied = Pool.get_pool(POOL_NAME, session=session).occupied_slots(session=session)
                    if waiting:
                        seen.append(occupied)
                        return
                    if time.monotonic() > give_up:
                        return

        give_up = time.monotonic() + 120
        holder = threading.Thread(target=hold_then_release)
        holder.start()
        held.wait(10)
        try:
            dag_run = dag.test()
        finally:
            done.set()
            holder.join()
        assert seen == [0]  # seen waiting, rescheduled, while the pool had no slot taken
        assert dag_run.state == DagRunState.SUCCESS
        ti = _task_instance(dag_run)
        assert ti.try_number == 1  # the wait used no retry
        if engine == "duckdb":
            assert count_rows(live, "trips") == 30
        else:
            import sqlite3

            with sqlite3.connect(live) as con:
                assert con.execute("SELECT count(*) FROM trips").fetchone()[0] == 30
