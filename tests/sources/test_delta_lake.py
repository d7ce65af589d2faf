"""``delta_lake:`` tables written with delta-rs on the local file system: types, pushdown proven by the
files the scan opens, append by watermark through the accelerator, and failures that keep old data."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import shutil
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from airflow_provider_accel.accelerator import DuckDBAcceleratorHook
from airflow_provider_accel.exceptions import RefreshError, TerminalRefreshError
from airflow_provider_accel.sources import source_for
from airflow_provider_accel.sources.base import ScanRequest
from airflow_provider_accel.spicepod.model import RefreshMode

from ._helpers import accelerated, dataset, load

deltalake = pytest.importorskip("deltalake")


def _events(start: int, count: int) -> pa.Table:
    ids = list(range(start, start + count))
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "amount": pa.array([decimal.Decimal(i) / 4 for i in ids], pa.decimal128(10, 2)),
            "region": pa.array(["eu" if i % 2 else "us" for i in ids]),
            "ts": pa.array(
                [dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(hours=i) for i in ids],
                pa.timestamp("us", tz="UTC"),
            ),
            "day": pa.array([dt.date(2024, 1, 1) + dt.timedelta(days=i % 3) for i in ids], pa.date32()),
            "ok": pa.array([i % 3 == 0 for i in ids]),
            "raw": pa.array([bytes([i % 256]) for i in ids], pa.binary()),
            "tags": pa.array([[f"t{i}"] for i in ids], pa.list_(pa.string())),
        }
    )


@pytest.fixture
def table(tmp_path: Path) -> Path:
    """A Delta table partitioned by region, 20 rows."""
    path = tmp_path / "events_delta"
    deltalake.write_deltalake(str(path), _events(1, 20), partition_by=["region"])
    return path


def test_types_round_trip(table: Path) -> None:
    """Every column keeps its Arrow type and values through the DuckDB scan."""
    src = source_for(dataset(f"delta_lake:{table}", {}))
    con = duckdb.connect()
    src.prepare(con)
    assert set(src.schema(con).names) == set(_events(1, 1).column_names)
    load(src.scan(ScanRequest(), con), con)
    row = con.execute("SELECT id, amount, ts, day, ok, raw, tags, region FROM t WHERE id = 3").fetchall()
    assert row == [
        (
            3,
            decimal.Decimal("0.75"),
            dt.datetime(2024, 1, 1, 3, tzinfo=dt.UTC),
            dt.date(2024, 1, 1),
            True,
            b"\x03",
            ["t3"],
            "eu",
        )
    ]
    assert con.execute("SELECT count(*) FROM t").fetchall() == [(20,)]


def test_partition_filter_skips_the_other_partitions_files(table: Path) -> None:
    """A partition filter never opens the other partition's files (proven by corrupting them)."""
    for data_file in (table / "region=us").glob("*.parquet"):
        data_file.write_bytes(b"not parquet at all")
    src = source_for(dataset(f"delta_lake:{table}", {}))
    con = duckdb.connect()
    src.prepare(con)
    where = "\"region\" = 'eu'"
    load(src.scan(ScanRequest(where=where), con), con, where=where)
    assert con.execute("SELECT count(*), min(id) FROM t").fetchall() == [(10, 1)]
    with pytest.raises(duckdb.Error):  # without the filter, the corrupted files are read and fail
        load(src.scan(ScanRequest(), con), con, table="t_all")


def test_column_filter_uses_file_statistics(tmp_path: Path) -> None:
    """A filter on a data column skips files whose Parquet statistics exclude it."""
    path = tmp_path / "stats"
    deltalake.write_deltalake(str(path), _events(1, 10))
    deltalake.write_deltalake(str(path), _events(101, 10), mode="append")
    assert len(deltalake.DeltaTable(str(path)).file_uris()) == 2
    first = deltalake.DeltaTable(str(path), version=0).file_uris()[0]
    Path(first.removeprefix("file://")).write_bytes(b"corrupt")
    src = source_for(dataset(f"delta_lake:{path}", {}))
    con = duckdb.connect()
    src.prepare(con)
    where = '"id" > 100'
    load(src.scan(ScanRequest(where=where), con), con, where=where)
    assert con.execute("SELECT count(*) FROM t").fetchall() == [(10,)]


def test_append_by_watermark_keeps_old_data_on_failure(table: Path, tmp_path: Path) -> None:
    """Append takes only rows past the watermark; a table that vanished fails and leaves the data intact."""
    hook = DuckDBAcceleratorHook(data_dir=tmp_path / "accel")
    ds = accelerated(
        f"delta_lake:{table}",
        {},
        name="events",
        time_column="ts",
        acceleration={"refresh_mode": RefreshMode.APPEND, "refresh_append_overlap": dt.timedelta(0)},
    )
    first = hook.refresh(ds, mode=RefreshMode.FULL)
    assert first.rows == 20
    deltalake.write_deltalake(str(table), _events(21, 5), mode="append", partition_by=["region"])
    appended = hook.refresh(dataclasses.replace(ds), mode=RefreshMode.APPEND)
    with duckdb.connect(appended.path, read_only=True) as con:
        assert con.execute("SELECT count(*), count(DISTINCT id), max(id) FROM events").fetchall() == [
            (25, 25, 25)
        ]
    shutil.rmtree(table)
    with pytest.raises(RefreshError):
        hook.refresh(dataclasses.replace(ds), mode=RefreshMode.APPEND)
    with duckdb.connect(appended.path, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM events").fetchall() == [(25,)]


def test_missing_table_is_terminal(tmp_path: Path) -> None:
    """A path without a _delta_log is terminal, naming the path."""
    (tmp_path / "empty").mkdir()
    with pytest.raises(TerminalRefreshError, match="no Delta table"):
        source_for(dataset(f"delta_lake:{tmp_path / 'empty'}", {})).schema(duckdb.connect())
