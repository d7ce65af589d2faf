"""acceleration.indexes, retention_sql and the DuckDB params, applied by real refreshes."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from airflow_provider_accel.accelerator.hook import DuckDBAcceleratorHook
from airflow_provider_accel.exceptions import TerminalRefreshError
from airflow_provider_accel.spicepod.model import Dataset, IndexKind, OnConflict, RefreshMode

from ._helpers import NOW, file_fingerprint, leftovers, make_dataset, query, rows, write_parquet

T0 = dt.datetime(2024, 1, 1)


def table(ids: list[int], keys: list[int] | None = None) -> pa.Table:
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "k": pa.array(keys if keys is not None else ids, pa.int64()),
            "ts": pa.array([T0 + dt.timedelta(hours=i) for i in ids], pa.timestamp("us")),
        }
    )


def with_acceleration(dataset: Dataset, **changes: Any) -> Dataset:
    assert dataset.acceleration is not None
    return dataclasses.replace(dataset, acceleration=dataclasses.replace(dataset.acceleration, **changes))


def indexes_of(path: Path) -> set[tuple[str, bool]]:
    return set(query(path, "SELECT expressions, is_unique FROM duckdb_indexes() WHERE table_name = 'events'"))


@pytest.fixture(params=[False, True], ids=["own-file", "shared-file"])
def events(request: pytest.FixtureRequest, src: Path, tmp_path: Path) -> Dataset:
    write_parquet(src / "t.parquet", table(list(range(10))))
    dataset = make_dataset(
        "events",
        f"file:{src}/t.parquet",
        time_column="ts",
        duckdb_file=tmp_path / "shared.duckdb" if request.param else None,
    )
    return with_acceleration(dataset, indexes={"k": IndexKind.UNIQUE, "(id, ts)": IndexKind.ENABLED})


class TestIndexes:
    def test_created_by_full_refresh_and_kept_across_appends(
        self, hook: DuckDBAcceleratorHook, src: Path, events: Dataset
    ) -> None:
        """A full refresh creates the indexes; appends keep them; a second full refresh recreates them."""
        expected = {("[k]", True), ("[id, ts]", False)}
        path = hook.dataset_path(events)
        hook.refresh(events, mode=RefreshMode.FULL)
        assert indexes_of(path) == expected
        write_parquet(src / "t.parquet", table(list(range(20))))
        hook.refresh(events, mode=RefreshMode.APPEND)
        assert indexes_of(path) == expected and len(rows(path, "events")) == 20
        hook.refresh(events, mode=RefreshMode.FULL)
        assert indexes_of(path) == expected

    @pytest.mark.parametrize("mode", [RefreshMode.FULL, RefreshMode.APPEND])
    def test_unique_violation_keeps_old_data(
        self, hook: DuckDBAcceleratorHook, src: Path, events: Dataset, mode: RefreshMode
    ) -> None:
        """Rows breaking a unique index fail the refresh with a message naming it; the old data stays."""
        hook.refresh(events, mode=RefreshMode.FULL)
        path = hook.dataset_path(events)
        before = file_fingerprint(path, "events")
        # id 10 and 11 share k=3 (full); id 10's k=3 is already accelerated (append).
        write_parquet(src / "t.parquet", table(list(range(12)), [*range(10), 3, 3]))
        with pytest.raises(TerminalRefreshError, match=r"unique index on \(k\)") as caught:
            hook.refresh(events, mode=mode)
        assert "kept" in str(caught.value)
        assert file_fingerprint(path, "events") == before
        assert indexes_of(path) == {("[k]", True), ("[id, ts]", False)}
        assert leftovers(path.parent) == []

    def test_upsert_on_a_unique_key_index(
        self, hook: DuckDBAcceleratorHook, src: Path, tmp_path: Path
    ) -> None:
        """An upsert append replaces the row of a key that carries a unique index."""
        write_parquet(src / "t.parquet", table([1, 2, 3]))
        dataset = make_dataset(
            "events",
            f"file:{src}/t.parquet",
            mode=RefreshMode.APPEND,
            time_column="ts",
            primary_key=["k"],
            on_conflict=OnConflict.UPSERT,
        )
        dataset = with_acceleration(dataset, indexes={"k": IndexKind.UNIQUE})
        hook.refresh(dataset)
        write_parquet(src / "t.parquet", table([3, 4], [1, 4]))  # id 3 now carries key 1
        hook.refresh(dataset)
        assert rows(hook.dataset_path(dataset), "events", "k, id") == [(1, 3), (2, 2), (3, 3), (4, 4)]

    def test_missing_index_column_is_named(self, hook: DuckDBAcceleratorHook, events: Dataset) -> None:
        """An index on a column the table does not have fails naming the column; nothing goes live."""
        broken = with_acceleration(events, indexes={"nope": IndexKind.ENABLED})
        with pytest.raises(TerminalRefreshError, match="nope"):
            hook.refresh(broken)
        assert not hook.dataset_path(broken).exists() or "events" not in {
            t for (t,) in query(hook.dataset_path(broken), "SELECT table_name FROM duckdb_tables()")
        }


class TestRetentionSql:
    def test_retention_dag_applies_sql_alone(self, hook: DuckDBAcceleratorHook, events: Dataset) -> None:
        """retention_sql without retention_period deletes the rows its condition matches."""
        dataset = with_acceleration(events, indexes={}, retention_sql="DELETE FROM events WHERE id % 2 = 0")
        hook.refresh(dataset)
        result = hook.apply_retention(dataset, now=NOW)
        assert [r[0] for r in rows(hook.dataset_path(dataset), "events", "id")] == [1, 3, 5, 7, 9]
        assert result.deleted_rows == 5 and result.cutoff is None

    def test_retention_dag_applies_sql_and_period(self, hook: DuckDBAcceleratorHook, events: Dataset) -> None:
        """With retention_period too, a row matching either condition is deleted."""
        dataset = with_acceleration(
            events,
            indexes={},
            retention_period=dt.timedelta(hours=3),
            retention_sql="DELETE FROM events WHERE id = 9",
        )
        hook.refresh(dataset)
        now = (T0 + dt.timedelta(hours=8)).replace(tzinfo=dt.UTC)  # cutoff: id 5's ts
        hook.apply_retention(dataset, now=now)
        assert [r[0] for r in rows(hook.dataset_path(dataset), "events", "id")] == [5, 6, 7, 8]

    @pytest.mark.parametrize("mode", [RefreshMode.FULL, RefreshMode.APPEND])
    def test_refresh_evicts_in_the_same_commit(
        self, hook: DuckDBAcceleratorHook, src: Path, events: Dataset, mode: RefreshMode
    ) -> None:
        """With retention_check_enabled, a refresh's data goes live without the rows retention_sql deletes."""
        dataset = with_acceleration(
            events,
            indexes={},
            retention_check_enabled=True,
            retention_sql="DELETE FROM events WHERE id >= 8",
        )
        hook.refresh(dataset, mode=RefreshMode.FULL)
        write_parquet(src / "t.parquet", table(list(range(12))))
        result = hook.refresh(dataset, mode=mode)
        assert [r[0] for r in rows(hook.dataset_path(dataset), "events", "id")] == list(range(8))
        assert result.total_rows == 8

    def test_refresh_without_retention_check_keeps_rows(
        self, hook: DuckDBAcceleratorHook, events: Dataset
    ) -> None:
        """retention_sql with retention_check_enabled false deletes nothing at refresh (as in Spice)."""
        dataset = with_acceleration(events, indexes={}, retention_sql="DELETE FROM events WHERE id >= 8")
        assert hook.refresh(dataset).total_rows == 10


class TestDuckDBParams:
    @pytest.mark.parametrize("mode", [RefreshMode.FULL, RefreshMode.APPEND])
    def test_sort_columns_order_the_stored_rows(
        self, hook: DuckDBAcceleratorHook, src: Path, events: Dataset, mode: RefreshMode
    ) -> None:
        """on_refresh_sort_columns stores the rows in that order after full and append refreshes."""
        assert events.acceleration is not None
        sort = {**events.acceleration.params, "on_refresh_sort_columns": "k DESC, id"}
        dataset = with_acceleration(events, indexes={}, params=sort)
        write_parquet(src / "t.parquet", table(list(range(10)), [i % 3 for i in range(10)]))
        hook.refresh(dataset, mode=RefreshMode.FULL)
        write_parquet(src / "t.parquet", table(list(range(14)), [i % 3 for i in range(14)]))
        hook.refresh(dataset, mode=mode)
        stored = query(hook.dataset_path(dataset), 'SELECT k, id FROM "events" ORDER BY rowid')
        assert stored == sorted(stored, key=lambda r: (-r[0], r[1])) and len(stored) == 14

    def test_sort_column_missing_is_named(self, hook: DuckDBAcceleratorHook, events: Dataset) -> None:
        """A sort column the table does not have fails the refresh naming it."""
        dataset = with_acceleration(events, indexes={}, params={"on_refresh_sort_columns": "nope"})
        with pytest.raises(TerminalRefreshError, match=r"on_refresh_sort_columns.*nope"):
            hook.refresh(dataset)

    @pytest.mark.parametrize(("value", "expected"), [("true", True), ("false", False), (None, False)])
    def test_preserve_insertion_order(
        self, hook: DuckDBAcceleratorHook, events: Dataset, value: str | None, expected: bool
    ) -> None:
        """duckdb_preserve_insertion_order sets the refresh connections' setting (unset: off, ADR 0004)."""
        params = {"duckdb_preserve_insertion_order": value} if value else {}
        dataset = with_acceleration(events, params=params)
        hook.use_memory_budget(dataset)
        con = hook.connect(":memory:")
        try:
            assert con.execute("SELECT current_setting('preserve_insertion_order')").fetchone() == (expected,)
        finally:
            con.close()

    @pytest.mark.parametrize(
        ("value", "shared", "new_file"),
        [
            (None, False, True),  # own file, default: swapped in by a rename
            ("reuse_file", False, False),
            ("checkpoint_file", False, False),
            ("replace_file", True, True),  # shared file: rewritten and renamed over
            ("reuse_file", True, False),
        ],
    )
    def test_on_full_refresh(
        self,
        hook: DuckDBAcceleratorHook,
        src: Path,
        tmp_path: Path,
        value: str | None,
        shared: bool,
        new_file: bool,
    ) -> None:
        """on_full_refresh: replace_file writes a new file, reuse_file and checkpoint_file the live one."""
        write_parquet(src / "t.parquet", table(list(range(10))))
        params: dict[str, Any] = {"on_full_refresh": value} if value else {}
        if shared:
            params["duckdb_file"] = str(tmp_path / "shared.duckdb")
            other = make_dataset("other", f"file:{src}/t.parquet", duckdb_file=tmp_path / "shared.duckdb")
            hook.refresh(other)
        dataset = with_acceleration(make_dataset("events", f"file:{src}/t.parquet"), params=params)
        hook.refresh(dataset)
        path = hook.dataset_path(dataset)
        inode = path.stat().st_ino
        hook.refresh(dataset)
        assert (path.stat().st_ino != inode) is new_file
        assert len(rows(path, "events")) == 10
        if shared:
            assert len(rows(path, "other")) == 10
        if value == "checkpoint_file":
            assert not Path(str(path) + ".wal").exists()
