"""Full refresh: every source form and format, refresh_sql, empty sources and the data window."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest

from airflow_provider_accel.accelerator.hook import DuckDBAcceleratorHook
from airflow_provider_accel.exceptions import TerminalRefreshError
from airflow_provider_accel.spicepod.model import RefreshMode, TimeFormat

from ._helpers import (
    ALL_TIME_FORMATS,
    NOW,
    WRITERS,
    columns,
    encode_times,
    leftovers,
    make_dataset,
    query,
    rows,
    tables,
    write_csv,
    write_parquet,
)


def trips(start: int, count: int) -> pa.Table:
    ids = list(range(start, start + count))
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "passengers": pa.array([i % 4 for i in ids], pa.int64()),
            "fare": pa.array([round(i * 1.5, 2) for i in ids], pa.float64()),
            "vendor": pa.array([f"v{i % 3}" for i in ids], pa.string()),
        }
    )


class TestSourceForms:
    @pytest.mark.parametrize("fmt", ["parquet", "csv", "json"])
    def test_single_file_each_format(self, hook: DuckDBAcceleratorHook, src: Path, fmt: str) -> None:
        """A full refresh of one Parquet/CSV/JSON file accelerates exactly its rows."""
        WRITERS[fmt](src / f"trips.{fmt}", trips(0, 50))
        dataset = make_dataset("trips", f"file:{src}/trips.{fmt}")
        result = hook.refresh(dataset)
        path = hook.dataset_path(dataset)
        assert result.rows == result.total_rows == 50
        assert rows(path, "trips", "id, passengers, vendor") == sorted(
            (i, i % 4, f"v{i % 3}") for i in range(50)
        )

    @pytest.mark.parametrize("fmt", ["parquet", "csv", "json"])
    def test_directory_reads_every_file(self, hook: DuckDBAcceleratorHook, src: Path, fmt: str) -> None:
        """A directory source reads every file of its format, including subdirectories."""
        WRITERS[fmt](src / f"a.{fmt}", trips(0, 10))
        WRITERS[fmt](src / "sub" / f"b.{fmt}", trips(10, 5))
        (src / "README.txt").write_text("not data")
        dataset = make_dataset("trips", f"file:{src}", params={"file_format": fmt})
        hook.refresh(dataset)
        assert rows(hook.dataset_path(dataset), "trips", "id") == [(i,) for i in range(15)]

    def test_glob_selects_matching_files(self, hook: DuckDBAcceleratorHook, src: Path) -> None:
        """A glob reads only the files it matches."""
        write_parquet(src / "2024-01.parquet", trips(0, 3))
        write_parquet(src / "2024-02.parquet", trips(3, 3))
        write_parquet(src / "2023-12.parquet", trips(100, 3))
        dataset = make_dataset("trips", f"file:{src}/2024-*.parquet")
        hook.refresh(dataset)
        assert rows(hook.dataset_path(dataset), "trips", "id") == [(i,) for i in range(6)]

    @pytest.mark.parametrize("form", ["file://{p}", "file:{p}", "{p}"])
    def test_uri_forms(self, hook: DuckDBAcceleratorHook, src: Path, form: str) -> None:
        """`file://path`, `file:path` and a plain path name the same file."""
        write_csv(src / "t.csv", trips(0, 7))
        dataset = make_dataset("trips", form.format(p=src / "t.csv"))
        assert hook.refresh(dataset).total_rows == 7

    def test_file_format_param_overrides_extension(self, hook: DuckDBAcceleratorHook, src: Path) -> None:
        """params.file_format reads a file whose extension says nothing."""
        write_csv(src / "export.dat", trips(0, 4))
        dataset = make_dataset("trips", f"file:{src}/export.dat", params={"file_format": "csv"})
        assert hook.refresh(dataset).total_rows == 4

    def test_refresh_replaces_previous_data(self, hook: DuckDBAcceleratorHook, src: Path) -> None:
        """A second full refresh replaces the table with the source's current rows."""
        write_parquet(src / "t.parquet", trips(0, 10))
        dataset = make_dataset("trips", f"file:{src}/t.parquet")
        hook.refresh(dataset)
        write_parquet(src / "t.parquet", trips(100, 3))
        hook.refresh(dataset)
        path = hook.dataset_path(dataset)
        assert rows(path, "trips", "id") == [(100,), (101,), (102,)]
        assert leftovers(path.parent) == []

    def test_dataset_name_with_odd_characters(self, hook: DuckDBAcceleratorHook, src: Path) -> None:
        """A dataset name that needs quoting is the table name, verbatim."""
        write_parquet(src / "t.parquet", trips(0, 2))
        dataset = make_dataset('Trips "2024"', f"file:{src}/t.parquet")
        hook.refresh(dataset)
        assert tables(hook.dataset_path(dataset)) == {'Trips "2024"'}


class TestRefreshSql:
    @pytest.fixture
    def dataset(self, src: Path) -> object:
        write_parquet(src / "t.parquet", trips(0, 100))
        return make_dataset("trips", f"file:{src}/t.parquet")

    def test_projection(self, hook: DuckDBAcceleratorHook, dataset: object) -> None:
        """A column list keeps exactly those columns, in that order."""
        hook.refresh(dataset, refresh_sql="SELECT vendor, id FROM trips")
        path = hook.dataset_path(dataset)
        assert columns(path, "trips") == ["vendor", "id"]
        assert len(rows(path, "trips")) == 100

    def test_where(self, hook: DuckDBAcceleratorHook, dataset: object) -> None:
        """A WHERE keeps exactly the matching rows."""
        hook.refresh(dataset, refresh_sql="SELECT * FROM trips WHERE passengers = 2 AND fare > 30")
        expected = [(i,) for i in range(100) if i % 4 == 2 and i * 1.5 > 30]
        assert rows(hook.dataset_path(dataset), "trips", "id") == expected

    def test_limit(self, hook: DuckDBAcceleratorHook, dataset: object) -> None:
        """LIMIT n keeps n rows, all of them from the WHERE's matches."""
        result = hook.refresh(dataset, refresh_sql="SELECT id FROM trips WHERE vendor = 'v1' LIMIT 5")
        got = rows(hook.dataset_path(dataset), "trips")
        assert result.total_rows == len(got) == 5
        assert all(i % 3 == 1 for (i,) in got)

    def test_dataset_refresh_sql_from_spicepod_is_not_implicit(
        self, hook: DuckDBAcceleratorHook, dataset: object
    ) -> None:
        """Without refresh_sql every row and column is accelerated."""
        hook.refresh(dataset)
        path = hook.dataset_path(dataset)
        assert columns(path, "trips") == ["id", "passengers", "fare", "vendor"]
        assert len(rows(path, "trips")) == 100

    def test_unknown_column_is_terminal_and_names_dataset(
        self, hook: DuckDBAcceleratorHook, dataset: object
    ) -> None:
        """A refresh_sql naming a missing column fails terminally with the dataset's name."""
        with pytest.raises(TerminalRefreshError, match="trips") as caught:
            hook.refresh(dataset, refresh_sql="SELECT nope FROM trips")
        assert caught.value.dataset == "trips"


class TestEmptySource:
    @pytest.mark.parametrize("fmt", ["parquet", "csv"])
    def test_zero_row_file_gives_empty_table(self, hook: DuckDBAcceleratorHook, src: Path, fmt: str) -> None:
        """A source with zero rows gives an existing, empty table with the source's columns."""
        WRITERS[fmt](src / f"t.{fmt}", trips(0, 0))
        dataset = make_dataset("trips", f"file:{src}/t.{fmt}")
        result = hook.refresh(dataset)
        path = hook.dataset_path(dataset)
        assert result.rows == result.total_rows == 0
        assert query(path, "SELECT count(*) FROM trips") == [(0,)]
        assert columns(path, "trips") == ["id", "passengers", "fare", "vendor"]

    def test_filter_matching_nothing_empties_table(self, hook: DuckDBAcceleratorHook, src: Path) -> None:
        """A full refresh whose filter matches nothing replaces old rows with an empty table."""
        write_parquet(src / "t.parquet", trips(0, 10))
        dataset = make_dataset("trips", f"file:{src}/t.parquet")
        hook.refresh(dataset)
        hook.refresh(dataset, refresh_sql="SELECT * FROM trips WHERE id < 0")
        assert query(hook.dataset_path(dataset), "SELECT count(*) FROM trips") == [(0,)]

    def test_empty_source_in_shared_file(
        self, hook: DuckDBAcceleratorHook, src: Path, tmp_path: Path
    ) -> None:
        """In a shared file, a zero-row source also gives an empty table, not a missing one."""
        shared = tmp_path / "shared.duckdb"
        write_parquet(src / "a.parquet", trips(0, 5))
        write_parquet(src / "b.parquet", trips(0, 0))
        hook.refresh(make_dataset("a", f"file:{src}/a.parquet", duckdb_file=shared))
        hook.refresh(make_dataset("b", f"file:{src}/b.parquet", duckdb_file=shared))
        assert tables(shared) == {"a", "b"}
        assert query(shared, "SELECT (SELECT count(*) FROM a), (SELECT count(*) FROM b)") == [(5, 0)]


def _window_instants() -> list[dt.datetime]:
    """Instants every 6 hours from 3 days before NOW to 1 day after."""
    start = NOW - dt.timedelta(days=3)
    return [start + dt.timedelta(hours=6 * k) for k in range(17)]


def _date_instant(value: dt.datetime, fmt: TimeFormat) -> dt.datetime:
    """How the accelerator compares a value of ``fmt``: a date is its UTC midnight."""
    if fmt == TimeFormat.DATE:
        return dt.datetime.combine(value.date(), dt.time(), tzinfo=dt.UTC)
    return value


class TestDataWindow:
    @pytest.mark.parametrize("fmt", ALL_TIME_FORMATS)
    def test_window_keeps_rows_strictly_newer(
        self, hook: DuckDBAcceleratorHook, src: Path, fmt: TimeFormat
    ) -> None:
        """refresh_data_window keeps exactly the rows with time_column > now - window, per time_format."""
        instants = _window_instants()
        table = pa.table({"id": list(range(len(instants))), "ts": encode_times(instants, fmt)})
        write_parquet(src / "t.parquet", table)
        window = dt.timedelta(days=1)
        dataset = make_dataset(
            "events", f"file:{src}/t.parquet", time_column="ts", time_format=fmt, window=window
        )
        hook.refresh(dataset, now=NOW)
        cutoff = NOW - window
        expected = [(i,) for i, t in enumerate(instants) if _date_instant(t, fmt) > cutoff]
        assert expected and len(expected) < len(instants)
        assert rows(hook.dataset_path(dataset), "events", "id") == expected

    def test_window_with_refresh_sql(self, hook: DuckDBAcceleratorHook, src: Path) -> None:
        """The data window and the refresh_sql's WHERE both apply."""
        instants = _window_instants()
        table = pa.table({"id": list(range(len(instants))), "ts": encode_times(instants, None)})
        write_parquet(src / "t.parquet", table)
        dataset = make_dataset(
            "events", f"file:{src}/t.parquet", time_column="ts", window=dt.timedelta(days=1)
        )
        hook.refresh(dataset, refresh_sql="SELECT id, ts FROM events WHERE id % 2 = 0", now=NOW)
        expected = [(i,) for i, t in enumerate(instants) if t > NOW - dt.timedelta(days=1) and i % 2 == 0]
        assert rows(hook.dataset_path(dataset), "events", "id") == expected

    def test_window_in_append_first_load(self, hook: DuckDBAcceleratorHook, src: Path) -> None:
        """An append into an empty table is a full fetch limited by the data window."""
        instants = _window_instants()
        table = pa.table({"id": list(range(len(instants))), "ts": encode_times(instants, None)})
        write_parquet(src / "t.parquet", table)
        dataset = make_dataset(
            "events",
            f"file:{src}/t.parquet",
            mode=RefreshMode.APPEND,
            time_column="ts",
            window=dt.timedelta(hours=12),
        )
        hook.refresh(dataset, now=NOW)
        expected = [(i,) for i, t in enumerate(instants) if t > NOW - dt.timedelta(hours=12)]
        assert rows(hook.dataset_path(dataset), "events", "id") == expected
