"""``iceberg:`` tables written by pyiceberg into a SQL catalog on SQLite with a local warehouse, read
through that catalog's REST front and as Hadoop-style tables: types, pushdown proven by the files the
scan plans and opens, LIMIT only with the whole filter, append by watermark through the accelerator,
and failures classified with the old data intact."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from servers import MotoS3

from airflow_provider_accel.accelerator import DuckDBAcceleratorHook
from airflow_provider_accel.exceptions import TerminalRefreshError, TransientRefreshError
from airflow_provider_accel.sources import source_for
from airflow_provider_accel.sources.base import ScanRequest
from airflow_provider_accel.sources.iceberg import IcebergSource
from airflow_provider_accel.spicepod.model import RefreshMode

from ._helpers import accelerated, dataset, load

pyiceberg = pytest.importorskip("pyiceberg")

from .iceberg_catalog import TOKEN, RestCatalog, rest_catalog, sql_catalog  # noqa: E402

AUTH = {"iceberg_token": TOKEN}


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
            "score": pa.array([i / 2 for i in ids], pa.float64()),
            "raw": pa.array([bytes([i % 256]) for i in ids], pa.binary()),
            "tags": pa.array([[f"t{i}"] for i in ids], pa.list_(pa.string())),
        }
    )


def _data_files(table: Any, row_filter: str = "True") -> list[Path]:
    """The local paths of the data files pyiceberg plans for ``row_filter``."""
    return [
        Path(task.file.file_path.removeprefix("file://"))
        for task in table.scan(row_filter=row_filter).plan_files()
    ]


@pytest.fixture
def rest(tmp_path: Path) -> Iterator[RestCatalog]:
    """A REST catalog with table ``sales.events``: two appends of 10 rows, so two data files."""
    with rest_catalog(tmp_path) as served:
        served.catalog.create_namespace("sales")
        table = served.catalog.create_table("sales.events", schema=_events(1, 1).schema)
        table.append(_events(1, 10))
        table.append(_events(101, 10))
        yield served


def _source(rest: RestCatalog, params: dict[str, Any] | None = None) -> IcebergSource:
    src = source_for(dataset(f"iceberg:{rest.table_url('sales', 'events')}", {**AUTH, **(params or {})}))
    assert isinstance(src, IcebergSource)
    return src


# -- types -------------------------------------------------------------------------------------


def test_types_round_trip(rest: RestCatalog) -> None:
    """Every column keeps its values through the REST catalog, the scan and DuckDB."""
    src = _source(rest)
    con = duckdb.connect()
    assert src.schema(con).names == _events(1, 1).column_names
    load(src.scan(ScanRequest(), con), con)
    row = con.execute(
        "SELECT id, amount, region, ts, day, ok, score, raw, tags FROM t WHERE id = 3"
    ).fetchall()
    assert row == [
        (
            3,
            decimal.Decimal("0.75"),
            "eu",
            dt.datetime(2024, 1, 1, 3, tzinfo=dt.UTC),
            dt.date(2024, 1, 1),
            True,
            1.5,
            b"\x03",
            ["t3"],
        )
    ]
    assert con.execute("SELECT count(*) FROM t").fetchall() == [(20,)]
    assert ("GET", "/v1/namespaces/sales/tables/events") in rest.requests


# -- pushdown ----------------------------------------------------------------------------------


def test_filter_is_planned_and_other_files_are_never_opened(rest: RestCatalog) -> None:
    """A filter on a data column plans only the matching file; the other one, corrupted, is never read."""
    table = rest.catalog.load_table("sales.events")
    (low,) = _data_files(table, "id <= 10")
    low.write_bytes(b"not parquet at all")
    src = _source(rest)
    con = duckdb.connect()
    where = '"id" > 100'
    load(src.scan(ScanRequest(where=where), con), con, where=where)
    assert src.files_planned == 1
    assert src.rows_streamed == 10
    assert con.execute("SELECT count(*), min(id) FROM t").fetchall() == [(10, 101)]
    with pytest.raises(duckdb.Error):  # without the filter, the corrupted file is read and fails
        load(src.scan(ScanRequest(), con), con, table="t_all")


def test_watermark_predicate_is_pushed(rest: RestCatalog) -> None:
    """The accelerator's timestamp watermark predicate becomes an Iceberg expression in the plan."""
    src = _source(rest)
    con = duckdb.connect()
    where = "\"ts\" >= TIMESTAMPTZ '2024-01-05 00:00:00+00:00'"
    load(src.scan(ScanRequest(where=where), con), con, where=where)
    assert src.files_planned == 1
    assert "GreaterThanOrEqual" in repr(src.pushed_filter)
    assert con.execute("SELECT count(*) FROM t").fetchall() == [(10,)]


def test_projection_reads_only_requested_columns(rest: RestCatalog) -> None:
    """A projection streams only the requested columns, in request order."""
    src = _source(rest)
    con = duckdb.connect()
    scan = src.scan(ScanRequest(columns=("region", "id")), con)
    assert scan.reader is not None
    assert scan.reader.schema.names == ["region", "id"]
    assert scan.reader.read_all().num_rows == 20


def test_limit_only_with_the_whole_filter(rest: RestCatalog) -> None:
    """LIMIT goes into the scan when the whole filter was pushed, never when part of it stays behind."""
    src = _source(rest)
    con = duckdb.connect()
    whole = src.scan(ScanRequest(where='"id" > 100', limit=3), con)
    assert whole.reader is not None and whole.reader.read_all().num_rows == 3
    # upper() is not an Iceberg expression: only "id" > 100 is pushed, so the limit must not be.
    partial_where = '"id" > 100 AND upper("region") = \'US\''
    partial = src.scan(ScanRequest(where=partial_where, limit=3), con)
    assert src.pushed_filter is not None and "upper" not in repr(src.pushed_filter).lower()
    assert partial.reader is not None and partial.reader.read_all().num_rows == 10


def test_unpushable_terms_are_left_to_the_accelerator(rest: RestCatalog) -> None:
    """An OR with an unpushable side, or a literal Iceberg would round to the column's type, is not pushed."""
    src = _source(rest)
    con = duckdb.connect()
    for where in ('"id" > 100 OR upper("region") = \'US\'', '"amount" > 1.555', '"id" > 1.5'):
        load(src.scan(ScanRequest(where=where), con), con, where=where, table="t_" + str(len(where)))
        assert src.pushed_filter is None
        assert src.files_planned == 2
    assert con.execute("SELECT count(*) FROM t_16").fetchall() == [(14,)]  # amount > 1.555: ids 7..10, 101..


def test_decimal_literal_of_the_column_scale_is_pushed(rest: RestCatalog) -> None:
    """A decimal literal no finer than the column's scale is pushed exactly."""
    src = _source(rest)
    con = duckdb.connect()
    where = '"amount" >= 25.25'
    load(src.scan(ScanRequest(where=where), con), con, where=where)
    assert src.files_planned == 1
    assert con.execute("SELECT min(id), count(*) FROM t").fetchall() == [(101, 10)]


# -- append ------------------------------------------------------------------------------------


def test_append_by_watermark_and_vanished_files_keep_old_data(rest: RestCatalog, tmp_path: Path) -> None:
    """Append takes only new rows; data files vanishing under the scan is transient, old data intact."""
    hook = DuckDBAcceleratorHook(data_dir=tmp_path / "accel")
    ds = accelerated(
        f"iceberg:{rest.table_url('sales', 'events')}",
        AUTH,
        name="events",
        time_column="ts",
        acceleration={"refresh_mode": RefreshMode.APPEND, "refresh_append_overlap": dt.timedelta(0)},
    )
    first = hook.refresh(ds, mode=RefreshMode.FULL)
    assert first.rows == 20
    rest.catalog.load_table("sales.events").append(_events(201, 5))
    appended = hook.refresh(dataclasses.replace(ds), mode=RefreshMode.APPEND)
    with duckdb.connect(appended.path, read_only=True) as con:
        assert con.execute("SELECT count(*), count(DISTINCT id), max(id) FROM events").fetchall() == [
            (25, 25, 205)
        ]
    for data_file in _data_files(rest.catalog.load_table("sales.events")):
        data_file.unlink()
    with pytest.raises(TransientRefreshError):
        hook.refresh(dataclasses.replace(ds), mode=RefreshMode.FULL)
    with duckdb.connect(appended.path, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM events").fetchall() == [(25,)]


# -- failures ----------------------------------------------------------------------------------


def test_catalog_down_is_transient(tmp_path: Path) -> None:
    """A REST catalog that stopped answering is transient."""
    with rest_catalog(tmp_path) as served:
        url = served.table_url("sales", "events")
    src = source_for(dataset(f"iceberg:{url}", AUTH))
    with pytest.raises(TransientRefreshError):
        src.schema(duckdb.connect())


def test_bad_token_is_terminal_with_a_clear_message(rest: RestCatalog) -> None:
    """A token the catalog refuses is terminal and names the credential params."""
    src = _source(rest, {"iceberg_token": "wrong"})
    with pytest.raises(TerminalRefreshError, match=r"refused the credentials.*iceberg_token"):
        src.schema(duckdb.connect())


def test_missing_table_is_terminal(rest: RestCatalog) -> None:
    """A table the catalog does not have is terminal."""
    src = source_for(dataset(f"iceberg:{rest.table_url('sales', 'nope')}", AUTH))
    with pytest.raises(TerminalRefreshError, match="table not found"):
        src.schema(duckdb.connect())


def test_malformed_from_is_terminal() -> None:
    """A URL that is not a REST table path or a table directory says which forms are expected."""
    src = source_for(dataset("iceberg:https://catalog.example.com/v1/namespaces/sales", {}))
    with pytest.raises(TerminalRefreshError, match="expected iceberg:http"):
        src.schema(duckdb.connect())


# -- Hadoop-style tables -----------------------------------------------------------------------


def _hadoop_table(tmp_path: Path) -> Any:
    catalog = sql_catalog(tmp_path)
    catalog.create_namespace("test")
    table = catalog.create_table("test.local", schema=_events(1, 1).schema)
    table.append(_events(1, 10))
    return table


def test_hadoop_table_by_metadata_path(tmp_path: Path) -> None:
    """A table directory with Spice's metadata_path param reads that metadata file's snapshot."""
    table = _hadoop_table(tmp_path)
    location = table.location()
    src = source_for(dataset(f"iceberg:{location}", {"metadata_path": table.metadata_location}))
    con = duckdb.connect()
    load(src.scan(ScanRequest(), con), con)
    assert con.execute("SELECT count(*), max(id) FROM t").fetchall() == [(10, 10)]


def test_hadoop_table_by_version_hint(tmp_path: Path) -> None:
    """Without metadata_path, metadata/version-hint.text names the current metadata file."""
    table = _hadoop_table(tmp_path)
    directory = Path(table.location().removeprefix("file://"))
    current = Path(table.metadata_location.removeprefix("file://"))
    (directory / "metadata" / "version-hint.text").write_text(current.name)
    src = source_for(dataset(f"iceberg:{table.location()}", {}))
    assert src.schema(duckdb.connect()).names == _events(1, 1).column_names


def test_hadoop_table_without_metadata_is_terminal(tmp_path: Path) -> None:
    """A directory with no version hint and no metadata_path is terminal and says to set metadata_path."""
    table = _hadoop_table(tmp_path)
    shutil.rmtree(Path(table.location().removeprefix("file://")) / "metadata")
    src = source_for(dataset(f"iceberg:{table.location()}", {}))
    with pytest.raises(TerminalRefreshError, match="metadata_path"):
        src.schema(duckdb.connect())


# -- object storage ----------------------------------------------------------------------------


def test_hadoop_table_in_s3_with_spice_s3_params(moto_s3: MotoS3, tmp_path: Path) -> None:
    """A table in S3 (moto) is read with Spice's iceberg_s3_* params and an s3a:// from."""
    s3 = moto_s3.params()
    bucket = moto_s3.new_bucket()
    from pyiceberg.catalog.sql import SqlCatalog

    props = {
        "s3.endpoint": s3["s3_endpoint"],
        "s3.access-key-id": s3["s3_key"],
        "s3.secret-access-key": s3["s3_secret"],
        "s3.region": s3["s3_region"],
    }
    catalog = SqlCatalog(
        "s3test", uri=f"sqlite:///{tmp_path / 'catalog.db'}", warehouse=f"s3://{bucket}/wh", **props
    )
    catalog.create_namespace("sales")
    table = catalog.create_table("sales.remote", schema=_events(1, 1).schema)
    table.append(_events(1, 10))
    params = {
        "iceberg_s3_endpoint": s3["s3_endpoint"],
        "iceberg_s3_access_key_id": s3["s3_key"],
        "iceberg_s3_secret_access_key": s3["s3_secret"],
        "iceberg_s3_region": s3["s3_region"],
        "metadata_path": table.metadata_location.replace("s3://", "s3a://", 1),
    }
    src = source_for(dataset("iceberg:" + table.location().replace("s3://", "s3a://", 1), params))
    con = duckdb.connect()
    where = '"id" > 5'
    load(src.scan(ScanRequest(where=where), con), con, where=where)
    assert con.execute("SELECT count(*), min(id) FROM t").fetchall() == [(5, 6)]
