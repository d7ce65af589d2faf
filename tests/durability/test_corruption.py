"""A damaged live file: bytes overwritten mid-file, a truncated file, a WAL deleted mid-write.

The next refresh detects it, moves it aside and rebuilds the dataset from the source (an append
falls back to a full load); the read helper gives a clear error instead of a crash.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from accelerator._helpers import make_dataset, query

from airflow_provider_accel.accelerator.hook import DuckDBAcceleratorHook
from airflow_provider_accel.accelerator.integrity import CORRUPT_SUFFIX, CorruptFileError, classify
from airflow_provider_accel.accelerator.layout import wal_file
from airflow_provider_accel.accelerator.reader import read_dataset
from airflow_provider_accel.spicepod.model import Dataset, RefreshMode, TimeFormat

from ._data import write_events

ROWS = 200_000


def _dataset(src: Path, mode: RefreshMode) -> Dataset:
    return make_dataset(
        "events",
        f"file:{src}",
        mode=mode,
        time_column="ts",
        time_format=TimeFormat.TIMESTAMP,
        params={"file_format": "parquet"},
    )


def _overwrite_middle(path: Path) -> None:
    size = path.stat().st_size
    with path.open("r+b") as f:
        f.seek(size // 2)
        f.write(os.urandom(8192))


def _truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


DAMAGE = {"overwritten_mid_file": _overwrite_middle, "truncated": _truncate}


def _full_scan(path: Path) -> int:
    return int(query(path, "SELECT count(*) FROM (SELECT hash(id, ts, payload) FROM events)")[0][0])


class TestCorruptLiveFile:
    @pytest.mark.parametrize("mode", [RefreshMode.FULL, RefreshMode.APPEND])
    @pytest.mark.parametrize("damage", sorted(DAMAGE))
    def test_next_refresh_detects_and_rebuilds(
        self,
        hook: DuckDBAcceleratorHook,
        src: Path,
        mode: RefreshMode,
        damage: str,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """A damaged live file is moved aside with a warning and the refresh rebuilds it from the source."""
        dataset = _dataset(src, mode)
        write_events(src / "a.parquet", 0, ROWS)
        hook.refresh(dataset)
        path = hook.dataset_path(dataset)
        DAMAGE[damage](path)
        write_events(src / "b.parquet", ROWS, 1_000, day=5)
        result = hook.refresh(dataset)
        assert result.total_rows == ROWS + 1_000 == _full_scan(path)  # every block readable again
        quarantined = path.with_name(path.name + CORRUPT_SUFFIX)
        if damage == "truncated" or mode == RefreshMode.APPEND:
            assert quarantined.exists(), "the corrupt file is kept aside as evidence"
            assert "corrupt" in caplog.text and "rebuilding" in caplog.text
        if mode == RefreshMode.APPEND:
            assert "falls back to a full load" in caplog.text

    def test_corrupt_append_without_source_fails_with_the_reason(
        self, hook: DuckDBAcceleratorHook, src: Path
    ) -> None:
        """If the rebuild cannot read the source the refresh fails (status Error); the next one rebuilds."""
        dataset = _dataset(src, RefreshMode.APPEND)
        write_events(src / "a.parquet", 0, ROWS)
        hook.refresh(dataset)
        path = hook.dataset_path(dataset)
        _overwrite_middle(path)
        (src / "a.parquet").rename(src.parent / "a.parquet.away")
        with pytest.raises(Exception) as caught:
            hook.refresh(dataset)
        assert not path.exists() and path.with_name(path.name + CORRUPT_SUFFIX).exists()
        assert "events" in str(caught.value)
        (src.parent / "a.parquet.away").rename(src / "a.parquet")
        assert hook.refresh(dataset).total_rows == ROWS == _full_scan(path)

    def test_wal_deleted_mid_write(self, hook: DuckDBAcceleratorHook, src: Path) -> None:
        """A WAL deleted before its checkpoint loses only the unfinished write: the file opens at its last
        checkpoint and the next append brings the table to exactly the source's rows."""
        dataset = _dataset(src, RefreshMode.APPEND)
        write_events(src / "a.parquet", 0, ROWS)
        hook.refresh(dataset)
        path = hook.dataset_path(dataset)
        # A writer commits to the WAL, its WAL is deleted, and it dies before any checkpoint.
        script = (
            "import duckdb, os, signal, sys; path = sys.argv[1]\n"
            "con = duckdb.connect(path, config={'checkpoint_threshold': '1TB'})\n"
            "con.execute('INSERT INTO events SELECT id + 10000000, ts, payload FROM events LIMIT 5000')\n"
            "os.unlink(path + '.wal')\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n"
        )
        done = subprocess.run([sys.executable, "-c", script, str(path)], check=False)
        assert done.returncode == -signal.SIGKILL and not wal_file(path).exists()
        write_events(src / "b.parquet", ROWS, 1_000, day=5)
        result = hook.refresh(dataset)
        assert result.total_rows == ROWS + 1_000 == _full_scan(path)
        ids = query(path, "SELECT count(*), count(DISTINCT id), max(id) FROM events")[0]
        assert ids == (ROWS + 1_000, ROWS + 1_000, ROWS + 999)  # the unfinished write left nothing behind

    def test_read_helper_gives_a_clear_error(self, hook: DuckDBAcceleratorHook, src: Path) -> None:
        """Reading a corrupt file with the read helper raises a DuckDB error that says the file is corrupt."""
        dataset = _dataset(src, RefreshMode.FULL)
        write_events(src / "a.parquet", 0, ROWS)
        hook.refresh(dataset)
        path = hook.dataset_path(dataset)
        _truncate(path)
        with pytest.raises(duckdb.Error) as caught:
            read_dataset(path)
        classified = classify(caught.value, "events", "reading", path)
        assert isinstance(classified, CorruptFileError) and "is corrupt" in str(classified)
