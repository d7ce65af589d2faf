"""The engine contract for the keys that shape the accelerated table, on every engine (duckdb, sqlite,
postgres): ``on_schema_change`` (full and append), ``indexes`` and ``retention_sql``."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from airflow_provider_accel.exceptions import TerminalRefreshError
from airflow_provider_accel.spicepod.model import Dataset, IndexKind, OnSchemaChange, RefreshMode

from ._helpers import make_dataset, write_parquet
from .engines import EngineUnderTest
from .test_schema_change import T0, source

#: The source's column ``v`` (and an extra one) after each change; the first load has v int32.
#: "widened" and "incompatible" are changes every engine's types can see (SQLite stores int32 and
#: int64 alike as INTEGER): int32 -> float64 each engine casts implicitly, int32 -> string none does.
CHANGES: dict[str, dict[str, pa.DataType]] = {
    "added": {"v": pa.int32(), "extra": pa.string()},
    "removed": {},
    "widened": {"v": pa.float64()},
    "incompatible": {"v": pa.string()},
}
ENGINE_TYPES: dict[str, dict[pa.DataType, str]] = {
    "duckdb": {pa.int64(): "BIGINT", pa.int32(): "INTEGER", pa.float64(): "DOUBLE", pa.string(): "VARCHAR"},
    "sqlite": {pa.int64(): "INTEGER", pa.int32(): "INTEGER", pa.float64(): "REAL", pa.string(): "TEXT"},
    "postgres": {
        pa.int64(): "bigint",
        pa.int32(): "integer",
        pa.float64(): "double precision",
        pa.string(): "text",
    },
}

#: (change, mode) pairs each value migrates; every other pair is refused with the data kept.
REBUILDS = {("added", "full"), ("removed", "full"), ("widened", "full"), ("incompatible", "full")}
ALLOWED = {
    OnSchemaChange.BLOCK: set(),
    OnSchemaChange.APPEND_NEW_COLUMNS: {("added", "full"), ("added", "append")},
    OnSchemaChange.SYNC_ALL_COLUMNS: REBUILDS
    | {("added", "append"), ("removed", "append"), ("widened", "append")},
    OnSchemaChange.DROP_AND_RECREATE: REBUILDS,
}


def _ids(engine: EngineUnderTest, dataset: Dataset) -> list[int]:
    return sorted(int(r[0]) for r in engine.rows(dataset, "id"))


def _with(dataset: Dataset, **acceleration: Any) -> Dataset:
    assert dataset.acceleration is not None
    return dataclasses.replace(
        dataset, acceleration=dataclasses.replace(dataset.acceleration, **acceleration)
    )


def _loaded(engine: EngineUnderTest, src: Path, policy: OnSchemaChange, **acceleration: Any) -> Dataset:
    path = write_parquet(src / "t.parquet", source(range(10), {"v": pa.int32()}))
    dataset = engine.on(make_dataset("events", path, time_column="ts"))
    dataset = dataclasses.replace(_with(dataset, **acceleration), on_schema_change=policy)
    engine.hook(dataset).refresh(dataset, mode=RefreshMode.FULL)
    return dataset


class TestOnSchemaChange:
    """on_schema_change migrates the table exactly when the value allows it, on every engine."""

    @pytest.mark.parametrize("policy", list(ALLOWED))
    @pytest.mark.parametrize("change", list(CHANGES))
    @pytest.mark.parametrize("mode", ["full", "append"])
    def test_on_schema_change(
        self, engine: EngineUnderTest, src: Path, policy: OnSchemaChange, change: str, mode: str
    ) -> None:
        """The table ends fully migrated when allowed, else untouched; no leftovers either way."""
        dataset = _loaded(engine, src, policy)
        before = (engine.columns(dataset), engine.rows(dataset))
        new_columns = CHANGES[change]
        # A full refresh reads rows 5-14; an append the rows after the watermark (10-14).
        ids = range(5, 15) if mode == "full" else range(10, 15)
        write_parquet(src / "t.parquet", source(ids, new_columns))
        if (change, mode) not in ALLOWED[policy]:
            with pytest.raises(TerminalRefreshError, match=rf"on_schema_change is {policy.value}") as caught:
                engine.hook(dataset).refresh(dataset, mode=RefreshMode(mode))
            assert "kept" in str(caught.value) and "differ" in str(caught.value)
            assert (engine.columns(dataset), engine.rows(dataset)) == before
            assert engine.staging_leftovers(dataset) == []
            return
        engine.hook(dataset).refresh(dataset, mode=RefreshMode(mode))
        types = ENGINE_TYPES[engine.name]
        expected = {"id": types[pa.int64()], "ts": engine.columns(dataset)["ts"]}
        expected |= {name: types[type_] for name, type_ in new_columns.items()}
        assert engine.columns(dataset) == expected
        assert _ids(engine, dataset) == (list(range(5, 15)) if mode == "full" else list(range(15)))
        assert engine.staging_leftovers(dataset) == []
        if change == "added" and mode == "append":  # rows accelerated before the change get NULL
            got = dict(engine.rows(dataset, "id, extra"))
            assert got[0] is None and got[14] == "14"
        if change == "widened" and mode == "append":  # kept rows are cast, new rows arrive as they are
            assert {int(i): float(v) for i, v in engine.rows(dataset, "id, v")} == {
                i: float(i) for i in range(15)
            }

    def test_refusal_names_columns_and_setting(self, engine: EngineUnderTest, src: Path) -> None:
        """A refused append names the columns that differ and the on_schema_change that would allow it."""
        dataset = _with(
            _loaded(engine, src, OnSchemaChange.APPEND_NEW_COLUMNS), refresh_mode=RefreshMode.APPEND
        )
        write_parquet(src / "t.parquet", source(range(10, 15), {}))
        with pytest.raises(TerminalRefreshError) as caught:
            engine.hook(dataset).refresh(dataset)
        message = str(caught.value)
        assert "removed v" in message and "sync_all_columns" in message and "events" in message

    def test_evolution_keeps_indexes(self, engine: EngineUnderTest, src: Path) -> None:
        """An append that drops a column and widens an indexed one keeps the unique index, in one commit."""
        path = write_parquet(src / "t.parquet", source(range(10), {"v": pa.int32(), "gone": pa.int32()}))
        dataset = _with(
            engine.on(make_dataset("events", path, time_column="ts")),
            indexes={"v": IndexKind.UNIQUE},
            refresh_mode=RefreshMode.APPEND,
        )
        dataset = dataclasses.replace(dataset, on_schema_change=OnSchemaChange.SYNC_ALL_COLUMNS)
        engine.hook(dataset).refresh(dataset)
        names = engine.indexes(dataset)
        assert list(names.values()) == [True]
        write_parquet(path, source(range(10, 15), {"v": pa.float64()}))
        engine.hook(dataset).refresh(dataset)
        assert engine.columns(dataset) == {
            "id": ENGINE_TYPES[engine.name][pa.int64()],
            "ts": engine.columns(dataset)["ts"],
            "v": ENGINE_TYPES[engine.name][pa.float64()],
        }
        assert engine.indexes(dataset) == names and len(engine.rows(dataset)) == 15
        assert engine.staging_leftovers(dataset) == []


class TestIndexes:
    """acceleration.indexes are built before the table goes live and kept across appends."""

    def test_indexes_created_and_kept_across_refreshes(self, engine: EngineUnderTest, src: Path) -> None:
        """Full refreshes and appends leave exactly the dataset's indexes, unique where asked."""
        path = write_parquet(src / "t.parquet", source(range(10), {"v": pa.int32()}))
        wanted = {"id": IndexKind.UNIQUE, "(ts, v)": IndexKind.ENABLED}
        dataset = _with(engine.on(make_dataset("events", path, time_column="ts")), indexes=wanted)
        engine.hook(dataset).refresh(dataset)
        first = engine.indexes(dataset)
        assert sorted(first.values()) == [False, True] and all(n.startswith("__accel_idx_") for n in first)
        engine.hook(dataset).refresh(dataset)  # a second full refresh: the same names, no collision
        assert engine.indexes(dataset) == first
        write_parquet(path, source(range(10, 15), {"v": pa.int32()}))
        engine.hook(dataset).refresh(dataset, mode=RefreshMode.APPEND)
        assert engine.indexes(dataset) == first and len(engine.rows(dataset)) == 15
        assert engine.staging_leftovers(dataset) == []

    @pytest.mark.parametrize("mode", ["full", "append"])
    def test_unique_violation_names_index_and_keeps_data(
        self, engine: EngineUnderTest, src: Path, mode: str
    ) -> None:
        """Rows that break a unique index fail the refresh naming the index; the old rows stay live."""
        path = write_parquet(src / "t.parquet", source(range(10), {"v": pa.int32()}))
        dataset = _with(
            engine.on(make_dataset("events", path, time_column="ts")), indexes={"v": IndexKind.UNIQUE}
        )
        engine.hook(dataset).refresh(dataset)
        before = engine.rows(dataset)
        duplicates = source(range(10, 12), {"v": pa.int32()}).set_column(2, "v", pa.array([3, 3], pa.int32()))
        if mode == "full":
            duplicates = pa.concat_tables([source(range(10), {"v": pa.int32()}), duplicates])
        write_parquet(path, duplicates)
        with pytest.raises(TerminalRefreshError, match=r"violate the unique index on \(v\)") as caught:
            engine.hook(dataset).refresh(dataset, mode=RefreshMode(mode))
        assert "kept" in str(caught.value)
        assert engine.rows(dataset) == before
        assert list(engine.indexes(dataset).values()) == [True]
        assert engine.staging_leftovers(dataset) == []

    def test_index_names_do_not_collide_across_datasets(self, engine: EngineUnderTest, src: Path) -> None:
        """Two datasets with the same index spec in one namespace (a PostgreSQL schema) each get theirs."""
        path = write_parquet(src / "t.parquet", source(range(5), {"v": pa.int32()}))
        names = ["events", "Events"] if engine.name == "postgres" else ["events", "others"]
        datasets = [
            _with(engine.on(make_dataset(name, path, params=None)), indexes={"id": IndexKind.UNIQUE})
            for name in names
        ]
        for dataset in datasets:
            engine.hook(dataset).refresh(dataset)
        for dataset in datasets:  # and again: a staging table's indexes meet the live ones
            engine.hook(dataset).refresh(dataset)
        first, second = (set(engine.indexes(d)) for d in datasets)
        assert len(first) == len(second) == 1 and first != second


class TestRetentionSql:
    """retention_sql evicts rows on the retention check and, when enabled, from each refresh's rows."""

    @pytest.mark.parametrize("mode", ["full", "append"])
    def test_refresh_evicts_matching_rows_before_going_live(
        self, engine: EngineUnderTest, src: Path, mode: str
    ) -> None:
        """With retention_check_enabled, the rows retention_sql matches never go live."""
        path = write_parquet(src / "t.parquet", source(range(10), {"v": pa.int32()}))
        dataset = _with(
            engine.on(make_dataset("events", path, time_column="ts")),
            retention_sql="DELETE FROM events WHERE v % 2 = 1",
            retention_check_enabled=True,
        )
        engine.hook(dataset).refresh(dataset)
        assert _ids(engine, dataset) == [0, 2, 4, 6, 8]
        write_parquet(path, source(range(10, 15), {"v": pa.int32()}))
        engine.hook(dataset).refresh(dataset, mode=RefreshMode(mode))
        expected = [10, 12, 14] if mode == "full" else [0, 2, 4, 6, 8, 10, 12, 14]
        assert _ids(engine, dataset) == expected

    def test_retention_check_applies_retention_sql(self, engine: EngineUnderTest, src: Path) -> None:
        """The retention check deletes the rows retention_sql matches, with no retention_period needed."""
        path = write_parquet(src / "t.parquet", source(range(10), {"v": pa.int32()}))
        dataset = _with(
            engine.on(make_dataset("events", path, time_column="ts")),
            retention_sql="DELETE FROM events WHERE id < 3 OR v = 9",
        )
        engine.hook(dataset).refresh(dataset)
        result = engine.hook(dataset).apply_retention(dataset)
        assert (result.deleted_rows, result.total_rows, result.cutoff) == (4, 6, None)
        assert _ids(engine, dataset) == [3, 4, 5, 6, 7, 8]

    def test_retention_check_combines_period_and_retention_sql(
        self, engine: EngineUnderTest, src: Path
    ) -> None:
        """A row older than the period or matching retention_sql is evicted; the others stay."""
        path = write_parquet(src / "t.parquet", source(range(10), {"v": pa.int32()}))
        dataset = _with(
            engine.on(make_dataset("events", path, time_column="ts", retention=dt.timedelta(hours=5))),
            retention_sql="DELETE FROM events WHERE v = 9",
            retention_check_enabled=False,
        )
        engine.hook(dataset).refresh(dataset)
        now = (T0 + dt.timedelta(hours=12)).replace(tzinfo=dt.UTC)  # cutoff: hour 7
        result = engine.hook(dataset).apply_retention(dataset, now=now)
        assert (result.deleted_rows, result.total_rows) == (8, 2)
        assert _ids(engine, dataset) == [7, 8]
