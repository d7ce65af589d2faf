"""The read helper (retries only DuckDB's lock conflict) and the transient/terminal error classes."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from airflow_provider_accel.accelerator.hook import DuckDBAcceleratorHook, classify_duckdb_error
from airflow_provider_accel.accelerator.reader import connect_reader, is_lock_conflict, read_dataset
from airflow_provider_accel.exceptions import SourceLockedError, TerminalRefreshError, TransientRefreshError
from airflow_provider_accel.spicepod.model import OnConflict, RefreshMode

from ._helpers import make_dataset, script, wait_for_line, write_parquet


@pytest.fixture
def held(tmp_path: Path) -> subprocess.Popen[str]:
    """Another process holding ``held.duckdb`` read-write until its stdin is closed."""
    proc = script("hold_file.py", tmp_path / "held.duckdb", stdin=subprocess.PIPE)
    wait_for_line(proc, "ready")
    yield proc
    # release() may already have closed stdin from its timer thread; closing it again is a no-op.
    if proc.stdin is not None and not proc.stdin.closed:
        proc.stdin.close()
    proc.wait(timeout=30)


def release(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait(timeout=30)


class TestReadHelper:
    def test_lock_conflict_is_retried_until_the_writer_leaves(
        self, tmp_path: Path, held: subprocess.Popen[str]
    ) -> None:
        """read_dataset waits out a writer holding the file and then returns its data."""
        threading.Timer(0.5, release, [held]).start()
        started = time.monotonic()
        table = read_dataset(tmp_path / "held.duckdb", "SELECT x FROM held", timeout=20)
        assert table.to_pylist() == [{"x": 1}]
        assert time.monotonic() - started >= 0.4

    def test_gives_up_after_timeout_with_source_locked(
        self, tmp_path: Path, held: subprocess.Popen[str]
    ) -> None:
        """A writer holding the file past the timeout gives SourceLockedError (transient)."""
        with pytest.raises(SourceLockedError):
            connect_reader(tmp_path / "held.duckdb", timeout=0.3)

    def test_other_errors_are_not_retried(self, tmp_path: Path) -> None:
        """A missing or corrupt file fails at once, without waiting for the timeout."""
        with pytest.raises(FileNotFoundError):
            read_dataset(tmp_path / "missing.duckdb", timeout=30)
        corrupt = tmp_path / "corrupt.duckdb"
        corrupt.write_bytes(b"not a duckdb file" * 1000)
        started = time.monotonic()
        with pytest.raises(duckdb.Error) as caught:
            read_dataset(corrupt, timeout=30)
        assert not is_lock_conflict(caught.value)
        assert time.monotonic() - started < 5

    def test_reads_a_dataset_and_holds_nothing(
        self, hook: DuckDBAcceleratorHook, src: Path, data_dir: Path
    ) -> None:
        """read_dataset(dataset) returns the table and closes the file, so an in-place write can follow."""
        write_parquet(src / "t.parquet", pa.table({"id": [1, 2, 3]}))
        dataset = make_dataset("events", f"file:{src}/t.parquet")
        hook.refresh(dataset)
        assert read_dataset(dataset, data_dir=data_dir).column("id").to_pylist() == [1, 2, 3]
        assert read_dataset(hook.dataset_path(dataset)).num_rows == 3
        hook.refresh(dataset, mode=RefreshMode.APPEND)  # in place: would wait if the reader held it
        assert (
            read_dataset(dataset, "SELECT count(*) AS n FROM events", data_dir=data_dir)["n"][0].as_py() == 6
        )


class TestErrorClassification:
    def test_lock_conflict_is_source_locked(self, tmp_path: Path, held: subprocess.Popen[str]) -> None:
        """DuckDB's lock-conflict IOException is classified SourceLockedError (transient)."""
        with pytest.raises(duckdb.Error) as caught:
            duckdb.connect(str(tmp_path / "held.duckdb"), read_only=True)
        err = classify_duckdb_error(caught.value, "events", "opening")
        assert isinstance(err, SourceLockedError) and isinstance(err, TransientRefreshError)
        assert err.transient and err.dataset == "events"

    def test_refresh_of_a_file_held_by_another_process_is_transient(
        self, hook: DuckDBAcceleratorHook, src: Path, tmp_path: Path, held: subprocess.Popen[str]
    ) -> None:
        """Refreshing a shared file another process holds fails with SourceLockedError after lock_timeout."""
        write_parquet(src / "t.parquet", pa.table({"id": [1]}))
        dataset = make_dataset("events", f"file:{src}/t.parquet", duckdb_file=tmp_path / "held.duckdb")
        hook.lock_timeout = 0.3
        with pytest.raises(SourceLockedError, match="events"):
            hook.refresh(dataset)

    def test_binder_error_is_terminal_and_names_dataset(self) -> None:
        """A DuckDB binder error (missing column) is classified terminal with the dataset's name."""
        con = duckdb.connect()
        with pytest.raises(duckdb.BinderException) as caught:
            con.execute("SELECT nope FROM range(1)").fetchall()
        err = classify_duckdb_error(caught.value, "events", "refresh")
        assert isinstance(err, TerminalRefreshError) and not err.transient
        assert "events" in str(err) and err.dataset == "events"

    def test_missing_primary_key_column_is_terminal(self, hook: DuckDBAcceleratorHook, src: Path) -> None:
        """A primary_key naming a column the source lacks fails terminally, naming the dataset."""
        write_parquet(src / "t.parquet", pa.table({"id": [1]}))
        dataset = make_dataset(
            "events", f"file:{src}/t.parquet", primary_key=("nope",), on_conflict=OnConflict.UPSERT
        )
        with pytest.raises(TerminalRefreshError, match="events"):
            hook.refresh(dataset)
