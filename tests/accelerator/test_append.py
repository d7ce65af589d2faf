"""Append refreshes: watermark, overlap, full-row dedup, primary keys, plain append, schema checks."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from airflow_provider_accel.accelerator.hook import DuckDBAcceleratorHook
from airflow_provider_accel.exceptions import TerminalRefreshError
from airflow_provider_accel.spicepod.model import Dataset, OnConflict, RefreshMode, TimeFormat

from ._helpers import (
    ALL_TIME_FORMATS,
    NOW,
    encode_times,
    file_fingerprint,
    leftovers,
    make_dataset,
    query,
    rows,
    write_parquet,
)

T0 = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)


def at(hours: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=hours)


def drop(
    src: Path, name: str, data: list[tuple[Any, ...]], fmt: TimeFormat | None = None, **extra: pa.Array
) -> None:
    """Write one source drop: rows of (id, hours after T0, value) as a new Parquet file."""
    table = pa.table(
        {
            "id": pa.array([r[0] for r in data], pa.int64()),
            "ts": encode_times([at(r[1]) for r in data], fmt),
            "value": pa.array([r[2] for r in data], pa.string()),
            **extra,
        }
    )
    write_parquet(src / f"{name}.parquet", table)


def append_dataset(src: Path, fmt: TimeFormat | None = None, **kwargs: Any) -> Dataset:
    kwargs.setdefault("overlap", dt.timedelta(hours=2))
    return make_dataset(
        "events",
        f"file:{src}",
        mode=RefreshMode.APPEND,
        time_column="ts",
        time_format=fmt,
        params={"file_format": "parquet"},
        **kwargs,
    )


def accelerated(hook: DuckDBAcceleratorHook, dataset: Dataset) -> list[tuple[Any, ...]]:
    return rows(hook.dataset_path(dataset), dataset.name, "id, value")


class TestAppendDrops:
    @pytest.mark.parametrize("shared", [False, True], ids=["own-file", "shared-file"])
    def test_drops_with_overlap_no_duplicates(
        self, hook: DuckDBAcceleratorHook, src: Path, tmp_path: Path, shared: bool
    ) -> None:
        """Re-delivered rows in the overlap are not duplicated; late rows inside it are added."""
        dataset = append_dataset(src, duckdb_file=tmp_path / "shared.duckdb" if shared else None)
        drop(src, "d1", [(i, i, f"a{i}") for i in range(10)])  # hours 0..9
        assert hook.refresh(dataset).rows == 10
        # Re-delivers hours 8 and 9 exactly, a late new row at 8.5h, new rows 10..12.
        drop(
            src,
            "d2",
            [(8, 8, "a8"), (9, 9, "a9"), (100, 8.5, "late"), *[(i, i, f"a{i}") for i in (10, 11, 12)]],
        )
        result = hook.refresh(dataset)
        assert result.rows == 4
        # Too-late row (before watermark 12h - 2h overlap) is not fetched; one re-delivery of 12h.
        drop(src, "d3", [(200, 9.5, "too-late"), (12, 12, "a12"), (13, 13, "a13")])
        assert hook.refresh(dataset).rows == 1
        expected = sorted([(i, f"a{i}") for i in range(14)] + [(100, "late")])
        assert accelerated(hook, dataset) == expected
        assert leftovers(hook.dataset_path(dataset).parent) == []

    def test_refresh_with_no_new_data_adds_nothing(self, hook: DuckDBAcceleratorHook, src: Path) -> None:
        """Repeating an append with no new drop leaves the table unchanged."""
        dataset = append_dataset(src)
        drop(src, "d1", [(i, i, "x") for i in range(5)])
        hook.refresh(dataset)
        before = file_fingerprint(hook.dataset_path(dataset), "events")
        assert hook.refresh(dataset).rows == 0
        assert file_fingerprint(hook.dataset_path(dataset), "events") == before

    def test_no_overlap_keeps_new_rows_at_the_watermark_instant(
        self, hook: DuckDBAcceleratorHook, src: Path
    ) -> None:
        """Without overlap, later rows at the watermark instant are appended; re-deliveries are not."""
        dataset = append_dataset(src, overlap=None)
        drop(src, "d1", [(1, 1, "a"), (2, 2, "b")])
        hook.refresh(dataset)
        drop(src, "d2", [(3, 2, "same-instant"), (4, 3, "new")])
        hook.refresh(dataset)
        assert accelerated(hook, dataset) == [(1, "a"), (2, "b"), (3, "same-instant"), (4, "new")]

    def test_rows_arriving_later_for_the_loaded_day_are_appended(
        self, hook: DuckDBAcceleratorHook, src: Path
    ) -> None:
        """A ``date`` time_column: rows for the day already loaded, arriving in a later drop, are kept."""
        dataset = append_dataset(src, TimeFormat.DATE, overlap=None)
        drop(src, "d1", [(i, 0, f"early{i}") for i in range(5)], TimeFormat.DATE)
        hook.refresh(dataset)
        drop(src, "d2", [(i, 0, f"early{i}") for i in range(5)], TimeFormat.DATE)  # the same file again
        drop(src, "d3", [(i, 1, f"late{i}") for i in range(5, 464)], TimeFormat.DATE)  # same day, later
        assert hook.refresh(dataset).rows == 459
        assert len(accelerated(hook, dataset)) == 464

    def test_rows_sharing_one_second_split_over_two_drops(
        self, hook: DuckDBAcceleratorHook, src: Path
    ) -> None:
        """Fourteen rows in one second, delivered in two drops of seven: all fourteen are accelerated."""
        dataset = append_dataset(src, TimeFormat.UNIX_SECONDS, overlap=None)
        drop(src, "d1", [(i, 1, f"v{i}") for i in range(7)], TimeFormat.UNIX_SECONDS)
        hook.refresh(dataset)
        drop(src, "d2", [(i, 1, f"v{i}") for i in range(7, 14)], TimeFormat.UNIX_SECONDS)
        assert hook.refresh(dataset).rows == 7
        assert sorted(accelerated(hook, dataset)) == [(i, f"v{i}") for i in range(14)]

    def test_duplicates_inside_one_drop_are_kept(self, hook: DuckDBAcceleratorHook, src: Path) -> None:
        """Dedup is against already accelerated rows only: identical new rows in one drop both land."""
        dataset = append_dataset(src)
        drop(src, "d1", [(1, 1, "a")])
        hook.refresh(dataset)
        drop(src, "d2", [(2, 2, "b"), (2, 2, "b")])
        hook.refresh(dataset)
        drop(src, "d3", [(3, 3, "c")])
        hook.refresh(dataset)
        assert accelerated(hook, dataset) == [(1, "a"), (2, "b"), (2, "b"), (3, "c")]

    def test_null_values_compare_equal_in_dedup(self, hook: DuckDBAcceleratorHook, src: Path) -> None:
        """A re-delivered row with NULLs counts as the same row (NULL matches NULL)."""
        dataset = append_dataset(src)
        drop(src, "d1", [(1, 1, None), (2, 2, "b")])
        hook.refresh(dataset)
        drop(src, "d2", [(1, 1, None), (3, 3, None)])
        hook.refresh(dataset)
        assert accelerated(hook, dataset) == [(1, None), (2, "b"), (3, None)]


class TestAppendTimeFormats:
    @pytest.mark.parametrize("fmt", ALL_TIME_FORMATS)
    def test_every_time_format(self, hook: DuckDBAcceleratorHook, src: Path, fmt: TimeFormat) -> None:
        """Watermark, overlap and dedup work the same for every time_format."""
        step = 24 if fmt == TimeFormat.DATE else 1  # dates: one row per day
        dataset = append_dataset(src, fmt, overlap=dt.timedelta(hours=2 * step))
        drop(src, "d1", [(i, i * step, f"a{i}") for i in range(5)], fmt)
        hook.refresh(dataset)
        drop(
            src,
            "d2",
            [(3, 3 * step, "a3"), (4, 4 * step, "a4"), (50, 3 * step, "late"), (5, 5 * step, "a5")],
            fmt,
        )
        hook.refresh(dataset)
        drop(src, "d3", [(60, 1 * step, "too-late"), (6, 6 * step, "a6")], fmt)
        result = hook.refresh(dataset)
        assert accelerated(hook, dataset) == sorted([(i, f"a{i}") for i in range(7)] + [(50, "late")])
        assert result.watermark is not None

    def test_iso8601_without_offset_is_utc_in_any_local_zone(
        self, hook: DuckDBAcceleratorHook, src: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """ISO-8601 strings without an offset are read as UTC even when the worker's zone is not UTC."""
        import time

        monkeypatch.setenv("TZ", "America/New_York")
        time.tzset()
        try:
            stamps = [f"2024-06-15T{h:02d}:00:00" for h in range(0, 24, 3)]
            write_parquet(src / "t.parquet", pa.table({"id": list(range(len(stamps))), "ts": stamps}))
            dataset = make_dataset(
                "events",
                f"file:{src}/t.parquet",
                time_column="ts",
                time_format=TimeFormat.ISO8601,
                window=dt.timedelta(hours=5),
            )
            hook.refresh(dataset, now=NOW)  # NOW is 12:00 UTC: keep > 07:00 UTC
            assert rows(hook.dataset_path(dataset), "events", "ts") == [(s,) for s in stamps[3:]]
        finally:
            monkeypatch.undo()
            time.tzset()


class TestPrimaryKey:
    @pytest.mark.parametrize(
        "action", [OnConflict.UPSERT, OnConflict.UPSERT_DEDUP, OnConflict.UPSERT_DEDUP_BY_ROW_ID]
    )
    def test_upsert_replaces_conflicting_rows(
        self, hook: DuckDBAcceleratorHook, src: Path, action: OnConflict
    ) -> None:
        """upsert and its dedup variants: the newest incoming row per key replaces the accelerated one."""
        dataset = append_dataset(src, primary_key=("id",), on_conflict=action)
        drop(src, "d1", [(1, 1, "v1"), (2, 2, "v1"), (3, 3, "v1")])
        hook.refresh(dataset)
        drop(src, "d2", [(2, 4, "v2"), (2, 5, "v3"), (4, 4, "v1")])
        hook.refresh(dataset)
        assert accelerated(hook, dataset) == [(1, "v1"), (2, "v3"), (3, "v1"), (4, "v1")]

    def test_drop_keeps_existing_rows(self, hook: DuckDBAcceleratorHook, src: Path) -> None:
        """on_conflict drop: an incoming row whose key is accelerated is discarded."""
        dataset = append_dataset(src, primary_key=("id",), on_conflict=OnConflict.DROP)
        drop(src, "d1", [(1, 1, "v1"), (2, 2, "v1")])
        hook.refresh(dataset)
        drop(src, "d2", [(2, 4, "v2"), (3, 4, "v1"), (3, 5, "v2")])
        hook.refresh(dataset)
        assert accelerated(hook, dataset) == [(1, "v1"), (2, "v1"), (3, "v1")]

    @pytest.mark.parametrize("action", [OnConflict.UPSERT, OnConflict.DROP])
    def test_composite_key(self, hook: DuckDBAcceleratorHook, src: Path, action: OnConflict) -> None:
        """A composite primary key conflicts only when every key column matches."""
        dataset = append_dataset(src, primary_key=("id", "value"), on_conflict=action)
        region = pa.array(["eu", "us"], pa.string())
        drop(src, "d1", [(1, 1, "a"), (1, 2, "b")], region=region)
        hook.refresh(dataset)
        drop(src, "d2", [(1, 3, "a"), (2, 3, "a")], region=pa.array(["asia", "eu"]))
        hook.refresh(dataset)
        got = rows(hook.dataset_path(dataset), "events", "id, value, region")
        first = "asia" if action == OnConflict.UPSERT else "eu"
        assert got == [(1, "a", first), (1, "b", "us"), (2, "a", "eu")]

    def test_full_refresh_keeps_one_row_per_key(self, hook: DuckDBAcceleratorHook, src: Path) -> None:
        """A full refresh with upsert keeps only the newest row of each key."""
        dataset = append_dataset(src, primary_key=("id",), on_conflict=OnConflict.UPSERT)
        drop(src, "d1", [(1, 1, "old"), (1, 2, "new"), (2, 1, "only")])
        hook.refresh(dataset, mode=RefreshMode.FULL)
        assert accelerated(hook, dataset) == [(1, "new"), (2, "only")]


class TestPlainAppend:
    def test_append_without_time_column_appends_as_is(self, hook: DuckDBAcceleratorHook, src: Path) -> None:
        """Without time_column an append adds what refresh_sql selects, as is."""
        write_parquet(src / "t.parquet", pa.table({"id": list(range(10))}))
        dataset = make_dataset("nums", f"file:{src}/t.parquet", mode=RefreshMode.FULL)
        hook.refresh(dataset, refresh_sql="SELECT * FROM nums WHERE id < 5")
        hook.refresh(dataset, mode=RefreshMode.APPEND, refresh_sql="SELECT * FROM nums WHERE id >= 5")
        assert rows(hook.dataset_path(dataset), "nums") == [(i,) for i in range(10)]
        hook.refresh(dataset, mode=RefreshMode.APPEND, refresh_sql="SELECT * FROM nums WHERE id = 0")
        assert rows(hook.dataset_path(dataset), "nums") == sorted([(i,) for i in range(10)] + [(0,)])

    def test_empty_table_means_full_fetch(self, hook: DuckDBAcceleratorHook, src: Path) -> None:
        """An append into an empty accelerated table fetches everything (no watermark)."""
        dataset = append_dataset(src)
        drop(src, "d1", [(i, i, "x") for i in range(6)])
        hook.refresh(dataset, mode=RefreshMode.FULL, refresh_sql="SELECT * FROM events WHERE id < 0")
        assert query(hook.dataset_path(dataset), "SELECT count(*) FROM events") == [(0,)]
        assert hook.refresh(dataset).rows == 6
        assert len(accelerated(hook, dataset)) == 6

    def test_append_requires_time_column_in_projection(self, hook: DuckDBAcceleratorHook, src: Path) -> None:
        """An append refresh_sql that drops the time_column is a terminal error naming the dataset."""
        dataset = append_dataset(src)
        drop(src, "d1", [(1, 1, "x")])
        with pytest.raises(TerminalRefreshError, match="events"):
            hook.refresh(dataset, refresh_sql="SELECT id FROM events")


class TestSchemaMismatch:
    @pytest.mark.parametrize("change", ["extra-column", "type-change"])
    def test_schema_change_is_terminal_and_keeps_data(
        self, hook: DuckDBAcceleratorHook, src: Path, change: str
    ) -> None:
        """A source schema change under append fails terminally and leaves the old data as it was."""
        dataset = append_dataset(src)
        drop(src, "d1", [(i, i, "x") for i in range(5)])
        hook.refresh(dataset)
        path = hook.dataset_path(dataset)
        before = file_fingerprint(path, "events")
        if change == "extra-column":
            drop(src, "d2", [(9, 9, "y")], extra=pa.array([1.5]))
        else:
            for f in src.iterdir():
                f.unlink()
            write_parquet(
                src / "d2.parquet",
                pa.table({"id": ["nine"], "ts": encode_times([at(9)], None), "value": ["y"]}),
            )
        with pytest.raises(TerminalRefreshError, match=r"(?i)events.*schema"):
            hook.refresh(dataset)
        assert file_fingerprint(path, "events") == before
        assert leftovers(path.parent) == []
