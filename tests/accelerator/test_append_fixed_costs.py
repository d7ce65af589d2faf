"""Appends that pay for what they add: what the last refresh recorded is used only while it still holds."""

from __future__ import annotations

import os
from pathlib import Path

from airflow_provider_accel.accelerator import duckdb_params, verified
from airflow_provider_accel.accelerator.hook import DuckDBAcceleratorHook
from airflow_provider_accel.accelerator.integrity import CORRUPT_SUFFIX
from airflow_provider_accel.spicepod.model import RefreshMode

from ._helpers import make_dataset
from .test_append import accelerated, append_dataset, drop


def _stat(path: Path) -> tuple[int, int, int]:
    stat = os.stat(path)
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


class TestUnchangedSource:
    def test_append_with_nothing_new_leaves_the_live_file_untouched(
        self, hook: DuckDBAcceleratorHook, src: Path
    ) -> None:
        """An append whose source files are as the last refresh read them: 0 rows, nothing written."""
        dataset = append_dataset(src)
        drop(src, "d1", [(i, i, f"a{i}") for i in range(10)])
        first = hook.refresh(dataset)
        path = hook.dataset_path(dataset)
        before = _stat(path)
        again = hook.refresh(dataset)
        assert (again.rows, again.total_rows, again.watermark) == (0, 10, first.watermark)
        assert _stat(path) == before

    def test_a_new_file_after_a_no_op_is_appended(self, hook: DuckDBAcceleratorHook, src: Path) -> None:
        """A file added after a no-op append changes the source's stamp: its rows are appended."""
        dataset = append_dataset(src)
        drop(src, "d1", [(i, i, f"a{i}") for i in range(10)])
        hook.refresh(dataset)
        assert hook.refresh(dataset).rows == 0
        drop(src, "d2", [(i, i, f"a{i}") for i in range(10, 13)])
        assert hook.refresh(dataset).rows == 3
        assert sorted(accelerated(hook, dataset)) == [(i, f"a{i}") for i in range(13)]

    def test_a_file_rewritten_in_place_is_read_again(self, hook: DuckDBAcceleratorHook, src: Path) -> None:
        """A source file replaced under the same name (rows added) is re-read; old rows not doubled."""
        dataset = append_dataset(src)
        drop(src, "d1", [(i, i, f"a{i}") for i in range(10)])
        hook.refresh(dataset)
        drop(src, "d1", [(i, i, f"a{i}") for i in range(12)])
        assert hook.refresh(dataset).rows == 2
        assert sorted(accelerated(hook, dataset)) == [(i, f"a{i}") for i in range(12)]

    def test_plain_append_after_a_narrower_refresh_sql_fetches_the_rest(
        self, hook: DuckDBAcceleratorHook, src: Path
    ) -> None:
        """An on-demand refresh_sql is no record of the whole source: the next plain append reads it all."""
        dataset = append_dataset(src)
        drop(src, "d1", [(i, i, f"a{i}") for i in range(10)])
        hook.refresh(dataset)
        drop(src, "d2", [(i, i, f"a{i}") for i in range(10, 14)])
        narrow = hook.refresh(dataset, refresh_sql="SELECT * FROM events WHERE id < 12")
        assert narrow.rows == 2
        assert hook.refresh(dataset).rows == 2
        assert sorted(accelerated(hook, dataset)) == [(i, f"a{i}") for i in range(14)]

    def test_a_live_file_written_by_others_is_not_trusted(
        self, hook: DuckDBAcceleratorHook, src: Path
    ) -> None:
        """Any write to the live file after the last refresh voids its record: damage is still caught."""
        dataset = append_dataset(src)
        drop(src, "d1", [(i, i, f"a{i}") for i in range(2_000)])
        hook.refresh(dataset)
        path = hook.dataset_path(dataset)
        assert verified.live_unchanged(path, dataset)
        size = path.stat().st_size
        with path.open("r+b") as f:
            f.seek(size // 2)
            f.write(os.urandom(8192))
        assert not verified.live_unchanged(path, dataset)
        result = hook.refresh(dataset)  # nothing new in the source, but the file is read whole again
        assert path.with_name(path.name + CORRUPT_SUFFIX).exists()
        assert result.total_rows == 2_000


class TestStatisticsAfterAppend:
    def test_only_a_large_share_or_deletes_re_analyze(self) -> None:
        """An insert-only append of under a tenth of the table keeps DuckDB's statistics; more re-analyzes."""
        assert not duckdb_params.statistics_stale(1_000_000, 99_999)
        assert duckdb_params.statistics_stale(1_000_000, 100_000)
        assert duckdb_params.statistics_stale(0, 0)


def test_append_without_time_column_still_appends_every_row(hook: DuckDBAcceleratorHook, src: Path) -> None:
    """Without a time_column there is no watermark: an unchanged source is appended again in full."""
    dataset = make_dataset("events", src, mode=RefreshMode.APPEND, params={"file_format": "parquet"})
    drop(src, "d1", [(i, i, f"a{i}") for i in range(5)])
    hook.refresh(dataset)
    assert hook.refresh(dataset).rows == 5
    assert len(accelerated(hook, dataset)) == 10
