"""The engine contract: every refresh semantic, on every engine (duckdb, sqlite, postgres)."""

from __future__ import annotations

import datetime as dt
import decimal
import json
from pathlib import Path

import pyarrow as pa
import pytest

from airflow_provider_accel.exceptions import RefreshError, TerminalRefreshError
from airflow_provider_accel.spicepod.model import OnConflict, RefreshMode

from ._helpers import NOW, make_dataset, write_parquet
from .engines import EngineUnderTest

UTC = dt.UTC


def _events(ids: list[int], days: list[int], values: list[str | None]) -> pa.Table:
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "ts": pa.array([dt.datetime(2024, 6, d, tzinfo=UTC) for d in days], pa.timestamp("us", tz="UTC")),
            "v": pa.array(values, pa.string()),
        }
    )


def _day(day: int) -> str:
    return f"2024-06-{day:02d}"


class TestFullRefresh:
    """A full refresh replaces the table; a failed one leaves the previous data."""

    def test_full_refresh_replaces_previous_data(self, engine: EngineUnderTest, src: Path) -> None:
        """The second full refresh's rows are the table's only rows, with no staging left behind."""
        path = write_parquet(src / "e.parquet", _events([1, 2, 3], [1, 2, 3], ["a", "b", "c"]))
        dataset = engine.on(make_dataset("events", path))
        engine.hook(dataset).refresh(dataset)
        write_parquet(path, _events([7, 8], [4, 5], ["x", "y"]))
        result = engine.hook(dataset).refresh(dataset)
        assert result.total_rows == 2 and result.rows == 2
        assert engine.rows(dataset, "id, v") == [(7, "x"), (8, "y")]
        assert engine.staging_leftovers(dataset) == []

    def test_failed_refresh_keeps_previous_data(self, engine: EngineUnderTest, src: Path) -> None:
        """A refresh whose source is gone fails with the dataset named and the old rows intact."""
        path = write_parquet(src / "e.parquet", _events([1, 2], [1, 2], ["a", "b"]))
        dataset = engine.on(make_dataset("events", path))
        engine.hook(dataset).refresh(dataset)
        path.unlink()
        with pytest.raises(RefreshError, match="events"):
            engine.hook(dataset).refresh(dataset)
        assert engine.rows(dataset, "id") == [(1,), (2,)]
        assert engine.staging_leftovers(dataset) == []

    def test_hostile_table_and_column_names(self, engine: EngineUnderTest, src: Path) -> None:
        """Quotes, spaces and SQL in dataset and column names are stored as names, not run."""
        table = pa.table({'we"ird col; DROP TABLE x': [1, 2], "Ünï cödé": ["a", "b"]})
        path = write_parquet(src / "h.parquet", table)
        dataset = engine.on(make_dataset('Trips "2024"; --', path))
        assert engine.hook(dataset).refresh(dataset).total_rows == 2
        assert engine.rows(dataset) == [(1, "a"), (2, "b")]

    def test_refresh_data_window_keeps_recent_rows(self, engine: EngineUnderTest, src: Path) -> None:
        """refresh_data_window fetches only rows newer than now - window."""
        path = write_parquet(src / "e.parquet", _events([1, 2, 3], [10, 13, 15], ["a", "b", "c"]))
        dataset = engine.on(make_dataset("events", path, time_column="ts", window=dt.timedelta(days=3)))
        engine.hook(dataset).refresh(dataset, now=NOW)
        assert engine.rows(dataset, "id") == [(2,), (3,)]


class TestAppend:
    """Append fetches from the watermark (minus the overlap), deduplicates, and honours on_conflict."""

    def test_append_with_overlap_adds_only_new_rows(self, engine: EngineUnderTest, src: Path) -> None:
        """Rows re-read in the overlap window are dropped as equal; later rows are added once."""
        path = write_parquet(src / "e.parquet", _events([1, 2], [1, 2], ["a", None]))
        dataset = engine.on(
            make_dataset(
                "events", path, mode=RefreshMode.APPEND, time_column="ts", overlap=dt.timedelta(days=1)
            )
        )
        engine.hook(dataset).refresh(dataset)
        write_parquet(path, _events([1, 2, 3, 4], [1, 2, 3, 4], ["a", None, "c", "d"]))
        result = engine.hook(dataset).refresh(dataset)
        assert result.rows == 2 and result.total_rows == 4
        assert engine.rows(dataset, "id, v") == [(1, "a"), (2, None), (3, "c"), (4, "d")]
        assert result.watermark is not None and _day(4) in result.watermark
        assert engine.staging_leftovers(dataset) == []

    @pytest.mark.parametrize(
        ("action", "expected"),
        [
            (OnConflict.UPSERT, [(1, "a"), (2, "new"), (3, "c")]),
            (OnConflict.DROP, [(1, "a"), (2, "b"), (3, "c")]),
        ],
    )
    def test_primary_key_on_conflict(
        self, engine: EngineUnderTest, src: Path, action: OnConflict, expected: list[tuple[int, str]]
    ) -> None:
        """upsert replaces the accelerated row of a key; drop keeps it; new keys are added."""
        path = write_parquet(src / "e.parquet", _events([1, 2], [1, 2], ["a", "b"]))
        dataset = engine.on(
            make_dataset(
                "events",
                path,
                mode=RefreshMode.APPEND,
                time_column="ts",
                primary_key=["id"],
                on_conflict=action,
            )
        )
        engine.hook(dataset).refresh(dataset)
        write_parquet(path, _events([2, 3], [2, 3], ["new", "c"]))
        engine.hook(dataset).refresh(dataset)
        assert engine.rows(dataset, "id, v") == expected

    def test_schema_change_is_terminal_and_keeps_data(self, engine: EngineUnderTest, src: Path) -> None:
        """An append whose source lost a column fails terminally; the accelerated rows stay."""
        path = write_parquet(src / "e.parquet", _events([1], [1], ["a"]))
        dataset = engine.on(make_dataset("events", path, mode=RefreshMode.APPEND, time_column="ts"))
        engine.hook(dataset).refresh(dataset)
        write_parquet(path, _events([2], [2], ["b"]).drop_columns(["v"]))
        with pytest.raises(TerminalRefreshError, match=r"source.s columns differ .*removed v"):
            engine.hook(dataset).refresh(dataset)
        assert engine.rows(dataset, "id") == [(1,)]


class TestRetention:
    """Retention deletes rows older than now - retention_period, in one transaction."""

    def test_retention_deletes_old_rows(self, engine: EngineUnderTest, src: Path) -> None:
        """Rows before the cutoff go; the count of deleted and remaining rows is reported."""
        path = write_parquet(src / "e.parquet", _events([1, 2, 3], [10, 13, 15], ["a", "b", "c"]))
        dataset = engine.on(make_dataset("events", path, time_column="ts", retention=dt.timedelta(days=3)))
        engine.hook(dataset).refresh(dataset)
        result = engine.hook(dataset).apply_retention(dataset, now=NOW)
        assert (result.deleted_rows, result.total_rows) == (1, 2)
        assert engine.rows(dataset, "id") == [(2,), (3,)]


class TestTypes:
    """Values round-trip through each engine's type mapping."""

    def test_types_round_trip(self, engine: EngineUnderTest, src: Path) -> None:
        """Zoned timestamps, decimals, NULLs, unicode and large strings read back as written."""
        big = "ü" * 200_000
        table = pa.table(
            {
                "ts": pa.array(
                    [dt.datetime(2024, 6, 1, 12, 30, 1, 123456, tzinfo=UTC), None], pa.timestamp("us", "UTC")
                ),
                "amount": pa.array([decimal.Decimal("12345.678"), None], pa.decimal128(18, 3)),
                "text": pa.array(["日本語 ✓", big]),
                "flag": pa.array([True, None]),
            }
        )
        path = write_parquet(src / "t.parquet", table)
        dataset = engine.on(make_dataset("typed", path))
        engine.hook(dataset).refresh(dataset)
        got = engine.rows(dataset, "ts, amount, text, flag")
        first, second = sorted(got, key=lambda r: r[0] is None)
        assert str(first[0]).startswith("2024-06-01") and "12:30:01.123456" in str(first[0])
        assert decimal.Decimal(str(first[1])) == decimal.Decimal("12345.678")
        assert first[2] == "日本語 ✓" and bool(first[3]) is True
        assert second[0] is None and second[1] is None and second[2] == big and second[3] is None

    def test_lists_round_trip(self, engine: EngineUnderTest, src: Path) -> None:
        """Lists are DuckDB LISTs and PostgreSQL arrays, NULLs and empties kept; SQLite stores JSON text."""
        table = pa.table(
            {
                "id": pa.array([1, 2, 3], pa.int64()),
                "ints": pa.array([[1, None, 3], [], None], pa.list_(pa.int64())),
                "words": pa.array([["ä", "b"], None, ["it's"]], pa.list_(pa.string())),
            }
        )
        path = write_parquet(src / "l.parquet", table)
        dataset = engine.on(make_dataset("lists", path))
        engine.hook(dataset).refresh(dataset)
        got = sorted(engine.query(dataset, "SELECT id, ints, words FROM {table}"), key=lambda r: int(r[0]))
        if engine.name == "sqlite":  # no array type: the list as JSON text, read back with json.loads
            assert [(i, json.loads(a) if a else a, json.loads(w) if w else w) for i, a, w in got] == [
                (1, [1, None, 3], ["ä", "b"]),
                (2, [], None),
                (3, None, ["it's"]),
            ]
            return
        assert [(i, list(a) if a is not None else None, w) for i, a, w in got] == [
            (1, [1, None, 3], ["ä", "b"]),
            (2, [], None),
            (3, None, ["it's"]),
        ]


class TestReadingBack:
    """Status, UI and lineage read each engine's table through its hook."""

    def test_preview_location_and_lineage_naming(self, engine: EngineUnderTest, src: Path) -> None:
        """The preview lists columns, total rows and rows; location and lineage name the engine's table."""
        from airflow_provider_accel.accelerator.engines import has_data, hook_for, location
        from airflow_provider_accel.operators.lineage import accelerated_naming

        path = write_parquet(src / "e.parquet", _events([1, 2, 3], [1, 2, 3], ["a", "b", "c"]))
        dataset = engine.on(make_dataset("events", path))
        hook = hook_for(dataset, data_dir=engine.data_dir)
        assert not has_data(hook, dataset)
        hook.refresh(dataset)
        assert has_data(hook, dataset)
        namespace, name = accelerated_naming(dataset, engine.data_dir)
        where = location(hook, dataset)
        if engine.name == "duckdb":
            assert where.endswith("events.duckdb") and namespace.startswith("duckdb://")
            return
        columns, total, rows = hook.preview(dataset, 2)
        assert [c for c, _ in columns] == ["id", "ts", "v"] and total == 3 and len(rows) == 2
        if engine.name == "sqlite":
            assert where.endswith("events.sqlite") and namespace == f"sqlite://{Path(where).resolve()}"
            assert name == "main.events"
        else:
            assert where.endswith(f"/postgres.{engine.pg_schema}.events") and "@" not in where
            assert namespace.startswith("postgres://") and name == f"postgres.{engine.pg_schema}.events"
