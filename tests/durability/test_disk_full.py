"""A file system that fills up during a refresh, an append, a retention run or a compaction.

Each case: the previous data stays readable, nothing is left behind (no staging file, no WAL), the
error is transient and names the file system and the space needed, and once space is freed the retry
succeeds. The data directory is a 24 MiB tmpfs mounted for the test (root only; CI runs as root).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from accelerator._helpers import make_dataset, query

from airflow_provider_accel.accelerator.hook import DuckDBAcceleratorHook
from airflow_provider_accel.accelerator.integrity import DiskFullError
from airflow_provider_accel.spicepod.model import RefreshMode, TimeFormat

from ._data import files_under, fill_disk, write_events

# The file, its lock, an in-place write's intent, the source columns and verified state of the last refresh.
KEPT = {
    "events.duckdb",
    "events.duckdb.lock",
    "events.duckdb.intent",
    "events.duckdb.source_columns.json",
    "events.duckdb.verified.json",
}


def _dataset(src: Path, mode: RefreshMode = RefreshMode.FULL, retention: dt.timedelta | None = None):  # type: ignore[no-untyped-def]
    return make_dataset(
        "events",
        f"file:{src}",
        mode=mode,
        time_column="ts",
        time_format=TimeFormat.TIMESTAMP,
        retention=retention,
        params={"file_format": "parquet"},
    )


def _count(path: Path) -> int:
    return int(query(path, "SELECT count(*) FROM events")[0][0])


def _assert_clean_failure(err: DiskFullError, disk: Path, path: Path, before: int) -> None:
    message = str(err)
    assert err.transient
    assert str(disk) in message and "MiB free" in message and "needs about" in message, message
    assert _count(path) == before  # the previous data is intact and readable
    assert files_under(disk) <= KEPT, files_under(disk)  # no staging file, no WAL, no spill file


class TestDiskFull:
    def test_full_refresh_on_a_full_disk(self, small_disk: Path, src: Path) -> None:
        """A full refresh filling the disk keeps the old data, leaves nothing, succeeds once space frees."""
        hook = DuckDBAcceleratorHook(data_dir=small_disk, lock_timeout=5)
        dataset = _dataset(src)
        write_events(src / "a.parquet", 0, 10_000)
        hook.refresh(dataset)
        path = hook.dataset_path(dataset)
        write_events(src / "b.parquet", 10_000, 400_000)
        filler = fill_disk(small_disk, leave_bytes=3 * 1024 * 1024)
        with pytest.raises(DiskFullError) as caught:
            hook.refresh(dataset)
        _assert_clean_failure(caught.value, small_disk, path, 10_000)
        filler.unlink()
        assert hook.refresh(dataset).total_rows == 410_000

    def test_append_on_a_full_disk(self, small_disk: Path, src: Path) -> None:
        """An append filling the disk keeps the old rows, leaves no WAL, succeeds once space is freed."""
        hook = DuckDBAcceleratorHook(data_dir=small_disk, lock_timeout=5)
        dataset = _dataset(src, RefreshMode.APPEND)
        write_events(src / "a.parquet", 0, 10_000)
        hook.refresh(dataset)
        path = hook.dataset_path(dataset)
        write_events(src / "b.parquet", 10_000, 200_000, day=1)
        filler = fill_disk(small_disk, leave_bytes=3 * 1024 * 1024)
        with pytest.raises(DiskFullError) as caught:
            hook.refresh(dataset)
        _assert_clean_failure(caught.value, small_disk, path, 10_000)
        filler.unlink()
        assert hook.refresh(dataset).total_rows == 210_000

    def test_append_filling_the_disk_while_merging_in_place(self, small_disk: Path, src: Path) -> None:
        """An append whose staging fits but whose in-place merge does not rolls back: old rows, no WAL."""
        hook = DuckDBAcceleratorHook(data_dir=small_disk, lock_timeout=5)
        dataset = _dataset(src, RefreshMode.APPEND)
        write_events(src / "a.parquet", 0, 10_000)
        hook.refresh(dataset)
        path = hook.dataset_path(dataset)
        write_events(src / "b.parquet", 10_000, 150_000, day=1)
        # Room for the staged drop (about 5 MiB) but not for a second copy of it in the live file.
        filler = fill_disk(small_disk, leave_bytes=8 * 1024 * 1024)
        with pytest.raises(DiskFullError) as caught:
            hook.refresh(dataset)
        _assert_clean_failure(caught.value, small_disk, path, 10_000)
        filler.unlink()
        assert hook.refresh(dataset).total_rows == 160_000

    def test_retention_and_compaction_on_a_full_disk(self, small_disk: Path, src: Path) -> None:
        """Retention on a full disk keeps a readable file and no leftovers; the retry deletes and compacts."""
        retention = dt.timedelta(days=1)
        hook = DuckDBAcceleratorHook(data_dir=small_disk, lock_timeout=5)
        dataset = _dataset(src, retention=retention)
        write_events(src / "a.parquet", 0, 300_000)  # ts on 2024-06-01 .. 06-04
        hook.refresh(dataset)
        path = hook.dataset_path(dataset)
        size = path.stat().st_size
        filler = fill_disk(small_disk, leave_bytes=256 * 1024)
        now = dt.datetime(2024, 6, 4, 12, tzinfo=dt.UTC)  # cutoff 06-03 12:00: 216,000 rows go
        with pytest.raises(DiskFullError) as caught:
            hook.apply_retention(dataset, now=now)
        message = str(caught.value)
        assert caught.value.transient and str(small_disk) in message and "needs about" in message, message
        # Readable, and in one of the two committed states: before retention, or after it (uncompacted).
        assert _count(path) in (300_000, 84_000)
        assert files_under(small_disk) <= KEPT, files_under(small_disk)
        filler.unlink()
        result = hook.apply_retention(dataset, now=now)
        assert result.total_rows == _count(path) == 84_000
        assert path.stat().st_size < size
