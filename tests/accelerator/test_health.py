"""The status health check (accelerator.health): a file is Ready only if it opens and reads back in full."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest

from airflow_provider_accel.accelerator import health
from airflow_provider_accel.accelerator.layout import dataset_file
from airflow_provider_accel.spicepod.loader import parse_spicepod
from airflow_provider_accel.spicepod.model import Dataset


def _dataset(name: str) -> Dataset:
    pod = parse_spicepod(
        {
            "version": "v1",
            "kind": "Spicepod",
            "name": "health",
            "datasets": [{"from": "file:/data/x.parquet", "name": name, "acceleration": {"enabled": True}}],
        }
    )
    return pod.accelerated_datasets[0]


def _write(dataset: Dataset, data_dir: Path, rows: int = 1_000) -> Path:
    path = dataset_file(dataset, data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    rows_sql = f"SELECT range AS id, md5(range::VARCHAR) AS payload FROM range({rows})"
    con.execute(f'CREATE TABLE "{dataset.name}" AS {rows_sql}')
    con.close()
    return path


def test_a_readable_file_is_ready_also_while_this_process_reads_it(tmp_path: Path) -> None:
    """A sound file checks ok, including while a reader of the same process holds it open."""
    dataset = _dataset("sound")
    path = _write(dataset, tmp_path)
    reader = duckdb.connect(str(path), read_only=True)
    try:
        assert health.file_health(dataset, tmp_path).ok
    finally:
        reader.close()


def test_a_damaged_file_is_reported_and_the_next_file_still_checks(tmp_path: Path) -> None:
    """A block overwritten mid-file is an error naming the file; a sound file checked next is ok."""
    damaged, sound = _dataset("damaged"), _dataset("sound_after")
    path = _write(damaged, tmp_path, rows=300_000)
    with path.open("r+b") as f:
        f.seek(path.stat().st_size // 2)
        f.write(os.urandom(65_536))
    error = health.file_health(damaged, tmp_path).error
    assert error is not None and str(path) in error and "refresh" in error
    _write(sound, tmp_path)
    assert health.file_health(sound, tmp_path).ok


@pytest.mark.parametrize("content", [b"", b"not a duckdb file" * 512])
def test_a_file_that_is_not_a_database_cannot_be_opened(tmp_path: Path, content: bytes) -> None:
    """An empty or garbage file says it cannot be opened (not Ready), with what to do."""
    dataset = _dataset(f"garbage_{len(content)}")
    path = dataset_file(dataset, tmp_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    error = health.file_health(dataset, tmp_path).error
    assert error is not None and "cannot be opened" in error and "POST /v1/datasets/" in error


def test_a_file_without_the_datasets_table_is_not_ready(tmp_path: Path) -> None:
    """A database file that lacks the dataset's table is an error saying so."""
    dataset, other = _dataset("wanted"), _dataset("other")
    other_path = _write(other, tmp_path)
    path = dataset_file(dataset, tmp_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.replace(other_path, path)
    error = health.file_health(dataset, tmp_path).error
    assert error is not None and "has no table wanted" in error
