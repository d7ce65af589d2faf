"""DuckDB invalidates the database in the middle of a write (Spice #13513), for real.

A checkpoint that fails after its transaction reached the WAL is a ``FatalException``: DuckDB marks
the database invalidated and every later statement on it fails ("database has been invalidated").
Two real ways to get there: a full disk under an append's in-place merge (through the hook), and
a checkpoint that cannot get memory. Each ends with the error classified by its type, the
previously committed data intact, the next refresh opening the file afresh, and a status that
never says ``Ready`` for a file that cannot be read.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from accelerator._helpers import make_dataset, query

from airflow_provider_accel.accelerator.health import file_health
from airflow_provider_accel.accelerator.hook import DuckDBAcceleratorHook
from airflow_provider_accel.accelerator.integrity import (
    DiskFullError,
    EngineOutOfMemoryError,
    classify,
    is_invalidation,
)
from airflow_provider_accel.accelerator.layout import wal_file
from airflow_provider_accel.plugin.api.service import dataset_status
from airflow_provider_accel.spicepod.model import Dataset, RefreshMode, TimeFormat

from ._data import fill_disk, write_events


def _append_dataset(src: Path) -> Dataset:
    return make_dataset(
        "events",
        f"file:{src}",
        mode=RefreshMode.APPEND,
        time_column="ts",
        time_format=TimeFormat.TIMESTAMP,
        params={"file_format": "parquet"},
    )


def _ids(path: Path) -> tuple[int, int]:
    count, total = query(path, "SELECT count(*), sum(id) FROM events")[0]
    return int(count), int(total)


def _status(dataset: Dataset, data_dir: Path, run_state: str) -> str:
    """What GET /v1/datasets?status=true answers: the run's status, Error if the file cannot be read."""
    status = dataset_status(run_state)
    return "Error" if status == "Ready" and not file_health(dataset, data_dir).ok else status


class TestDatabaseInvalidatedMidWrite:
    def test_checkpoint_on_a_full_disk_invalidates_then_the_next_refresh_reopens(
        self, small_disk: Path, src: Path
    ) -> None:
        """A merge whose checkpoint fills the disk invalidates the database: transient, old rows kept."""
        hook = DuckDBAcceleratorHook(data_dir=small_disk, lock_timeout=5)
        dataset = _append_dataset(src)
        write_events(src / "a.parquet", 0, 10_000)
        hook.refresh(dataset)
        path = hook.dataset_path(dataset)
        before = _ids(path)
        assert _status(dataset, small_disk, "success") == "Ready"
        write_events(src / "b.parquet", 10_000, 150_000, day=1)
        # Room for the staged drop and for its WAL, not for the checkpoint that folds it into the file.
        filler = fill_disk(small_disk, leave_bytes=8 * 1024 * 1024)
        with pytest.raises(DiskFullError) as caught:
            hook.refresh(dataset)
        cause = caught.value.__cause__
        assert isinstance(cause, duckdb.FatalException) and is_invalidation(cause), repr(cause)
        assert "checkpoint" in str(cause).casefold()
        assert caught.value.transient
        assert not wal_file(path).exists()  # the WAL of the write reported as failed was dropped
        assert _ids(path) == before  # the previously committed data, exactly
        assert file_health(dataset, small_disk).ok  # the file reads back in full (the old data)
        assert _status(dataset, small_disk, "failed") == "Error"
        filler.unlink()
        result = DuckDBAcceleratorHook(data_dir=small_disk, lock_timeout=5).refresh(dataset)
        assert result.total_rows == 160_000 and _ids(path) == (160_000, sum(range(160_000)))
        assert _status(dataset, small_disk, "success") == "Ready"

    def test_checkpoint_out_of_memory_invalidates_is_terminal_and_undone(
        self, hook: DuckDBAcceleratorHook, src: Path, tmp_path: Path
    ) -> None:
        """A checkpoint out of memory invalidates the database: terminal, names the setting, undone."""
        dataset = _append_dataset(src)
        write_events(src / "a.parquet", 0, 10_000)
        hook.refresh(dataset)
        path = hook.dataset_path(dataset)
        before = _ids(path)
        # A writer commits rows to the WAL (no automatic checkpoint), then its checkpoint gets 1 MB
        # (DuckDB cannot allocate its 256 KiB blocks: a FatalException inside the checkpoint).
        settings = {
            "checkpoint_threshold": "1GB",
            "auto_checkpoint_skip_wal_threshold": 1_000_000_000,
            "temp_directory": str(tmp_path / "spill"),  # lowering the limit offloads the new rows here
        }
        con = duckdb.connect(str(path), config=settings)
        try:
            con.execute(
                "INSERT INTO events SELECT i, TIMESTAMP '2024-06-01' + to_seconds(i), md5(i::VARCHAR) "
                "FROM range(1000000, 1100000) t(i)"
            )
            con.execute("SET memory_limit = '1MB'")
            with pytest.raises(duckdb.FatalException) as fatal:
                con.execute("CHECKPOINT")
            with pytest.raises(duckdb.Error, match="database has been invalidated"):
                con.execute("SELECT count(*) FROM events").fetchall()
        finally:
            con.close()
        assert wal_file(path).exists()  # the committed rows wait in the WAL
        classified = classify(fatal.value, dataset.name, "append", path)
        assert isinstance(classified, EngineOutOfMemoryError) and not classified.transient
        assert "duckdb_memory_limit" in str(classified) and "memory_limit" in str(classified)
        assert not wal_file(path).exists() and _ids(path) == before  # undone, as reported
        write_events(src / "b.parquet", 10_000, 5_000, day=1)
        assert hook.refresh(dataset).total_rows == 15_000  # the next refresh opens the file afresh
        assert _ids(path) == (15_000, sum(range(15_000)))
        assert _status(dataset, hook.data_dir, "success") == "Ready"

    def test_status_is_never_ready_for_a_file_that_cannot_be_read(
        self, hook: DuckDBAcceleratorHook, src: Path
    ) -> None:
        """A succeeded refresh whose file no longer opens is Error, not Ready."""
        dataset = _append_dataset(src)
        write_events(src / "a.parquet", 0, 1_000)
        hook.refresh(dataset)
        path = hook.dataset_path(dataset)
        path.write_bytes(path.read_bytes()[: 4096 * 2])  # headers only: DuckDB cannot open it
        assert not file_health(dataset, hook.data_dir).ok
        assert _status(dataset, hook.data_dir, "success") == "Error"
