"""Bounded memory by default, out-of-memory errors, and the refresh pool."""

from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path

import duckdb
import pytest
from accelerator._helpers import make_dataset, query

from airflow_provider_accel.accelerator.hook import DuckDBAcceleratorHook
from airflow_provider_accel.accelerator.integrity import EngineOutOfMemoryError
from airflow_provider_accel.accelerator.layout import writer_lock
from airflow_provider_accel.accelerator.pool import (
    DEFAULT_PARALLELISM,
    POOL_NAME,
    refresh_parallelism,
    writer_busy,
)
from airflow_provider_accel.accelerator.resources import (
    CAP_BYTES,
    FLOOR_BYTES,
    MIB,
    STREAMING_CAP_BYTES,
    available_memory,
    memory_budget,
)
from airflow_provider_accel.spicepod.model import RefreshMode

from ._data import write_events

GIB = 1024 * MIB


class TestMemoryBudget:
    def test_cgroup_limit_wins_over_host_memory(self, tmp_path: Path) -> None:
        """A container's cgroup v2 limit, not the host's RAM, is the memory to share."""
        v2 = tmp_path / "memory.max"
        v2.write_text(f"{2 * GIB}\n")
        assert available_memory(v2, tmp_path / "none", host=16 * GIB)[0] == 2 * GIB
        v2.write_text("max\n")
        assert available_memory(v2, tmp_path / "none", host=16 * GIB) == (16 * GIB, "the host's RAM")

    def test_limit_is_shared_by_the_pool_with_floor_and_cap(self, tmp_path: Path) -> None:
        """The default limit is half the memory over the parallel refreshes, held between floor and cap."""
        share = memory_budget({}, tmp_path, parallel_refreshes=4, available=(4 * GIB, "test"))
        assert share.memory_limit == "512MiB" and "4 refreshes" in share.reason
        floor = memory_budget({}, tmp_path, parallel_refreshes=50, available=(1 * GIB, "test"))
        assert floor.memory_limit == f"{FLOOR_BYTES // MIB}MiB" and "floor" in floor.reason
        cap = memory_budget({}, tmp_path, parallel_refreshes=1, available=(64 * GIB, "test"))
        assert cap.memory_limit == f"{CAP_BYTES // MIB}MiB" and "cap" in cap.reason
        assert share.temp_directory.startswith(str(tmp_path))

    def test_streaming_refresh_has_the_low_cap_and_an_index_keeps_the_high_one(self, tmp_path: Path) -> None:
        """A plain full refresh: the streaming cap, eager row-group flushes; key, sort or append: the cap."""
        big = (64 * GIB, "test")
        plain = memory_budget({}, tmp_path, dataset=make_dataset("d", "file:/x"), available=big)
        assert plain.memory_limit == f"{STREAMING_CAP_BYTES // MIB}MiB" and "streaming cap" in plain.reason
        assert plain.apply({})["write_buffer_row_group_count"] == 1
        keyed = make_dataset("d", "file:/x", primary_key=("id",))
        plain_dataset = make_dataset("d", "file:/x")
        sort = dataclasses.replace(plain_dataset.acceleration, params={"on_refresh_sort_columns": "id"})  # type: ignore[arg-type]
        appended = make_dataset("d", "file:/x", mode=RefreshMode.APPEND, time_column="ts")
        for dataset in (keyed, dataclasses.replace(plain_dataset, acceleration=sort), appended):
            budget = memory_budget({}, tmp_path, dataset=dataset, available=big)
            assert budget.memory_limit == f"{CAP_BYTES // MIB}MiB" and budget.settings == {}
        small = memory_budget({}, tmp_path, dataset=make_dataset("d", "file:/x"), available=(GIB, "test"))
        assert small.memory_limit == f"{STREAMING_CAP_BYTES // MIB}MiB"  # the floor never exceeds the cap
        assert (
            plain.apply({"write_buffer_row_group_count": 5})["write_buffer_row_group_count"] == 5
        )  # the connection's setting wins

    def test_connection_extra_and_dataset_param_override(self, tmp_path: Path) -> None:
        """The dataset's duckdb_memory_limit beats the connection's memory_limit, which beats the default."""
        dataset = make_dataset("d", "file:/x")
        assert memory_budget({"memory_limit": "3GB"}, tmp_path, dataset=dataset).memory_limit == "3GB"
        acceleration = dataclasses.replace(dataset.acceleration, params={"duckdb_memory_limit": "700MB"})  # type: ignore[arg-type]
        tuned = dataclasses.replace(dataset, acceleration=acceleration)
        budget = memory_budget({"memory_limit": "3GB"}, tmp_path, dataset=tuned)
        assert budget.memory_limit == "700MB" and "duckdb_memory_limit" in budget.reason

    def test_refresh_runs_with_the_budget_and_logs_it(
        self, hook: DuckDBAcceleratorHook, src: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A refresh's DuckDB session has the derived memory_limit, and the task log says why."""
        dataset = make_dataset("events", f"file:{src}", params={"file_format": "parquet"})
        write_events(src / "a.parquet", 0, 1_000)
        hook.refresh(dataset)
        assert "DuckDB memory_limit" in caplog.text and "runtime.dataset_load_parallelism" in caplog.text
        assert hook.memory_budget is not None

        def limit(con: duckdb.DuckDBPyConnection) -> str:
            try:
                return str(con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0])
            finally:
                con.close()

        # DuckDB formats the setting itself: compare with a session given exactly the budget's value.
        hooked = limit(hook.connect(hook.data_dir / "probe.duckdb"))
        assert hooked == limit(duckdb.connect(config={"memory_limit": hook.memory_budget.memory_limit}))
        assert hooked != limit(duckdb.connect())  # not DuckDB's 80%-of-RAM default


class TestOutOfMemory:
    def test_tiny_memory_limit_without_spill_is_terminal_then_recovers(
        self, data_dir: Path, src: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An OOM with no room to spill is terminal, names the setting, keeps old data; more memory works."""
        dataset = make_dataset(
            "events",
            f"file:{src}",
            mode=RefreshMode.FULL,
            primary_key=("id",),
            params={"file_format": "parquet"},
        )
        write_events(src / "a.parquet", 0, 1_000)
        DuckDBAcceleratorHook(data_dir=data_dir, lock_timeout=5).refresh(dataset)
        write_events(src / "b.parquet", 1_000, 300_000)
        extra = {"memory_limit": "4MB", "settings": {"max_temp_directory_size": "0KiB"}}
        monkeypatch.setenv(
            "AIRFLOW_CONN_ACCEL_DUCKDB_DEFAULT", json.dumps({"conn_type": "accel_duckdb", "extra": extra})
        )
        with pytest.raises(EngineOutOfMemoryError) as caught:
            DuckDBAcceleratorHook(data_dir=data_dir, lock_timeout=5).refresh(dataset)
        assert not caught.value.transient and "duckdb_memory_limit" in str(caught.value)
        path = DuckDBAcceleratorHook(data_dir=data_dir).dataset_path(dataset)
        assert query(path, "SELECT count(*) FROM events")[0][0] == 1_000
        monkeypatch.delenv("AIRFLOW_CONN_ACCEL_DUCKDB_DEFAULT")
        assert DuckDBAcceleratorHook(data_dir=data_dir, lock_timeout=5).refresh(dataset).total_rows == 301_000


class TestRefreshPool:
    def test_parallelism_comes_from_the_spicepod_runtime(self, tmp_path: Path) -> None:
        """runtime.dataset_load_parallelism sets the slots; absent or invalid: the documented default."""
        pod = tmp_path / "spicepod.yaml"
        pod.write_text("version: v1\nkind: Spicepod\nname: p\nruntime:\n  dataset_load_parallelism: 7\n")
        assert refresh_parallelism(pod)[0] == 7
        pod.write_text("version: v1\nkind: Spicepod\nname: p\n")
        assert refresh_parallelism(pod)[0] == DEFAULT_PARALLELISM
        pod.write_text("version: v1\nkind: Spicepod\nname: p\nruntime:\n  dataset_load_parallelism: 0\n")
        assert refresh_parallelism(pod)[0] == DEFAULT_PARALLELISM

    def test_scheduler_start_creates_the_pool_idempotently(self, airflow_db: Path) -> None:
        """The listener creates the pool when a Job starts, and a second start changes nothing."""
        from airflow.jobs.job import Job
        from airflow.models.pool import Pool

        from airflow_provider_accel.accelerator.pool import ensure_refresh_pool, refresh_pool_listener

        ensure_refresh_pool(3)
        assert Pool.get_pool(POOL_NAME).slots == 3
        refresh_pool_listener.on_starting(Job())  # as the scheduler's job does when it starts
        refresh_pool_listener.on_starting(Job())
        pools = [p for p in Pool.get_pools() if p.pool == POOL_NAME]
        assert len(pools) == 1 and pools[0].slots == refresh_parallelism()[0]
        assert pools[0].include_deferred is False  # a refresh waiting in the triggerer holds no slot

    def test_every_refresh_and_retention_task_is_in_the_pool(self, tmp_path: Path) -> None:
        """The DAG factory puts each refresh and retention task in the refresh pool."""
        import datetime as dt

        from airflow_provider_accel.dags.factory import build_dags
        from airflow_provider_accel.spicepod.model import Spicepod

        dataset = make_dataset("e", "file:/x", retention=dt.timedelta(days=1), time_column="ts")
        dags = build_dags(Spicepod(name="p", datasets=(dataset,)))
        tasks = [t for dag in dags.values() for t in dag.tasks]
        assert len(tasks) == 2 and all(t.pool == POOL_NAME for t in tasks)

    def test_writer_busy_while_another_refresh_holds_the_lock(self, tmp_path: Path) -> None:
        """The probe the operator uses before deferring sees a held writer lock, and a free one."""
        path = tmp_path / "x.duckdb"
        assert not writer_busy(path)
        held, release = threading.Event(), threading.Event()

        def hold() -> None:
            with writer_lock(path, 5):
                held.set()
                release.wait(10)

        thread = threading.Thread(target=hold)
        thread.start()
        held.wait(10)
        try:
            assert writer_busy(path)
        finally:
            release.set()
            thread.join()
        assert not writer_busy(path)


class TestLockWait:
    def test_busy_file_reschedules_until_lock_timeout_then_fails_transiently(self, tmp_path: Path) -> None:
        """A held lock gives a recheck time within lock_timeout of the first wait, then SourceLockedError."""
        import datetime as dt

        from airflow_provider_accel.accelerator.pool import lock_wait
        from airflow_provider_accel.exceptions import SourceLockedError

        path = tmp_path / "x.duckdb"
        now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        assert lock_wait(path, 30, None, now=now) is None  # nobody writes it: go ahead
        held, release = threading.Event(), threading.Event()

        def hold() -> None:
            with writer_lock(path, 5):
                held.set()
                release.wait(10)

        thread = threading.Thread(target=hold)
        thread.start()
        held.wait(10)
        try:
            assert lock_wait(path, 30, None, now=now) == now + dt.timedelta(seconds=5)
            assert lock_wait(path, 2, None, now=now) == now + dt.timedelta(seconds=2)
            first = now - dt.timedelta(seconds=28)
            assert lock_wait(path, 30, first, now=now) == first + dt.timedelta(seconds=30)
            with pytest.raises(SourceLockedError, match="more than 30s") as caught:
                lock_wait(path, 30, now - dt.timedelta(seconds=31), dataset="d", now=now)
            assert caught.value.transient
        finally:
            release.set()
            thread.join()
