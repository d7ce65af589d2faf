"""``airflow:<conn_id>/<table>``: any Airflow SQL connection (generic DB-API path with the SQLite hook;
PostgreSQL and MySQL connections delegate to their streaming sources)."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import sqlite3
from pathlib import Path
from typing import Any

import duckdb
import pytest

from airflow_provider_accel.exceptions import TerminalRefreshError
from airflow_provider_accel.sources import source_for
from airflow_provider_accel.sources.airflow_sql import AirflowSqlSource, parse_from
from airflow_provider_accel.sources.base import ScanRequest
from airflow_provider_accel.sources.database import Column
from airflow_provider_accel.sources.mysql import MySQLSource
from airflow_provider_accel.sources.postgres import PostgresSource

from ._helpers import dataset, load, mysql_exec


@pytest.fixture
def sqlite_conn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An Airflow SQLite connection to a database with a small typed table."""
    path = tmp_path / "af.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE items (id INTEGER, price NUMERIC, name TEXT, raw BLOB, seen TEXT);
        WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < 500)
        INSERT INTO items SELECT g, g * 1.5, 'item ' || g, x'01', NULL FROM s;
        """
    )
    conn.commit()
    conn.close()
    monkeypatch.setenv("AIRFLOW_CONN_ACCEL_TEST_LITE", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    return "accel_test_lite"


def test_from_syntax() -> None:
    """airflow:<conn>/<table> and airflow:<conn>/<schema>.<table> split at the first slash."""
    assert parse_from("airflow:wh/public.orders") == ("wh", "public.orders")
    assert parse_from("airflow:wh/orders") == ("wh", "orders")
    with pytest.raises(ValueError):
        parse_from("airflow:wh")


class TestGenericHook:
    def test_types_pushdown_and_round_trip(self, sqlite_conn: str) -> None:
        """Through the hook's DB-API cursor: filter/projection/limit in the query, typed batches out."""
        src = source_for(dataset(f"airflow:{sqlite_conn}/items", {"airflow_batch_rows": 64}))
        assert isinstance(src, AirflowSqlSource)
        con = duckdb.connect()
        where = '"id" > 450 AND "name" LIKE \'item 4%\''
        load(
            src.scan(ScanRequest(columns=("id", "price", "name", "seen"), where=where), con), con, where=where
        )
        assert src.rows_streamed == 49
        assert src.last_query is not None and "WHERE" in src.last_query
        assert con.execute("SELECT min(id), max(id) FROM t").fetchall() == [(451, 499)]
        assert [r[1] for r in con.execute("DESCRIBE t").fetchall()] == [
            "BIGINT",
            "DOUBLE",
            "VARCHAR",
            "VARCHAR",
        ]
        src.close()
        load(src.scan(ScanRequest(limit=3), con), con, table="t2")
        assert src.rows_streamed == 3

    def test_missing_connection_and_table_are_terminal(self, sqlite_conn: str) -> None:
        """An unknown connection id or a missing table is terminal."""
        with pytest.raises(TerminalRefreshError, match="nope_conn"):
            source_for(dataset("airflow:nope_conn/items", {})).schema(duckdb.connect())
        with pytest.raises(TerminalRefreshError, match="nope"):
            source_for(dataset(f"airflow:{sqlite_conn}/nope", {})).schema(duckdb.connect())

    def test_value_inference(self) -> None:
        """Python values from a driver map to Arrow types; decimals take the description's precision/scale."""
        src = AirflowSqlSource(dataset("airflow:x/t", {}))
        desc = [("a", None, None, None, 10, 2, None), ("b",), ("c",), ("d",)]
        rows = [(decimal.Decimal("1.50"), dt.datetime(2024, 1, 1, tzinfo=dt.UTC), None, b"x")]
        schema = src._infer(desc, rows)
        assert [str(f.type) for f in schema] == [
            "decimal128(10, 2)",
            "timestamp[us, tz=UTC]",
            "string",
            "binary",
        ]

    def test_nan_and_infinity_decimals_do_not_break_inference(self) -> None:
        """NaN/Infinity decimals (exponent n/F) do not break scale inference; loading one is terminal."""
        src = AirflowSqlSource(dataset("airflow:x/t", {}))
        values = [decimal.Decimal("NaN"), decimal.Decimal("-Infinity"), decimal.Decimal("1.25"), None]
        schema = src._infer([("amount",)], [(v,) for v in values])
        assert str(schema.field("amount").type) == "decimal128(38, 2)"
        convert = src.checked(Column("amount", schema.field("amount").type, '"amount"'))
        assert convert([decimal.Decimal("1.25"), None]).to_pylist() == [decimal.Decimal("1.25"), None]
        with pytest.raises(TerminalRefreshError, match="'amount'"):
            convert([decimal.Decimal("NaN")])


class TestDelegation:
    def test_postgres_connection_uses_adbc_source(
        self, pg_conn: Any, pg_schema: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A postgres connection is read by the ADBC source, and messages keep the airflow: form."""
        from servers import PG_HOST, PG_PORT, PG_USER

        monkeypatch.setenv("AIRFLOW_CONN_ACCEL_TEST_PG2", f"postgres://{PG_USER}@{PG_HOST}:{PG_PORT}/test")
        pg_conn.execute(f"CREATE TABLE {pg_schema}.t AS SELECT g AS id FROM generate_series(1, 20) g")
        src = source_for(dataset(f"airflow:accel_test_pg2/{pg_schema}.t", {}))
        con = duckdb.connect()
        load(src.scan(ScanRequest(where='"id" <= 5'), con), con)
        assert isinstance(src, PostgresSource)
        assert src.rows_streamed == 5
        assert src.description.startswith("airflow:accel_test_pg2/")
        with pytest.raises(TerminalRefreshError, match="airflow:accel_test_pg2"):
            source_for(dataset(f"airflow:accel_test_pg2/{pg_schema}.nope", {})).schema(con)

    def test_mysql_connection_uses_streaming_source(
        self, mysql_conn: Any, mysql_db: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A mysql connection is read by the unbuffered-cursor MySQL source."""
        from servers import MYSQL_HOST, MYSQL_PASSWORD, MYSQL_PORT, MYSQL_USER

        monkeypatch.setenv(
            "AIRFLOW_CONN_ACCEL_TEST_MY2",
            json.dumps({"conn_type": "mysql", "host": MYSQL_HOST, "port": MYSQL_PORT, "login": MYSQL_USER,
                        "password": MYSQL_PASSWORD, "schema": mysql_db}),
        )  # fmt: skip
        mysql_exec(
            mysql_conn,
            f"CREATE TABLE {mysql_db}.t (id int)",
            f"INSERT INTO {mysql_db}.t VALUES (1), (2), (3)",
        )
        src = source_for(dataset("airflow:accel_test_my2/t", {}))
        con = duckdb.connect()
        load(src.scan(ScanRequest(where='"id" > 1'), con), con)
        assert isinstance(src, MySQLSource)
        assert src.rows_streamed == 2
