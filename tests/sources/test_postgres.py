"""PostgreSQL source (``postgres:schema.table``): types, pushdown, failures, against the real server."""

from __future__ import annotations

import datetime as dt
import decimal
import time
import uuid
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from airflow_provider_accel.exceptions import TerminalRefreshError
from airflow_provider_accel.sources import source_for
from airflow_provider_accel.sources.base import ScanRequest
from airflow_provider_accel.sources.postgres import PostgresSource

from ._database_contract import DatabaseServer, FailureContract, PushdownContract
from ._helpers import dataset, load, pg_params

ALL_TYPES_DDL = """
CREATE TYPE {s}.mood AS ENUM ('sad', 'happy');
CREATE TABLE {s}.all_types (
    id int8 PRIMARY KEY, i2 int2, i4 int4, f4 float4, f8 float8, n numeric(12,3), nu numeric, b bool,
    t text, vc varchar(5), ch char(3), bt bytea, d date, ts timestamp, tstz timestamptz, iv interval,
    j json, jb jsonb, u uuid, ai int[], tx text[], tm time, ip inet, m {s}.mood
);
INSERT INTO {s}.all_types VALUES (1, -2, 3, 1.5, 2.25, 123456789.123, 1.123456789012, true, 'héllo',
    'abc', 'x',
    '\\x00ff', '2024-02-29', '2024-01-02 03:04:05.123456', '2024-01-02 03:04:05.5+02',
    '1 year 2 mons 3 days 04:05:06', '{{"a":[1,2]}}', '{{"b":null}}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
    '{{1,NULL,3}}', '{{"a","b c"}}', '23:59:59.999999', '10.0.0.1/8', 'happy');
INSERT INTO {s}.all_types (id) VALUES (2);
"""


def _source(schema: str, table: str, **params: Any) -> PostgresSource:
    src = source_for(dataset(f"postgres:{schema}.{table}", {**pg_params(), **params}))
    assert isinstance(src, PostgresSource)
    return src


def _tuples_read(pg_conn: Any, schema: str) -> int:
    """Tuples the server read from ``schema.nums`` so far (sequential + through an index)."""
    row = pg_conn.execute(
        "SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) FROM pg_stat_user_tables "
        "WHERE schemaname = %s AND relname = 'nums'",
        (schema,),
    ).fetchone()
    return int(row[0])


def _numbers(pg_conn: Any, schema: str, rows: int = 1000) -> None:
    pg_conn.execute(
        f"CREATE TABLE {schema}.nums AS SELECT g AS id, g % 7 AS k, 'row ' || g AS label, "
        f"timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute' AS at "
        f"FROM generate_series(1, {rows}) g"
    )


class PgServer(DatabaseServer):
    scheme = "postgres"
    source_class = PostgresSource
    any_table = "public.t"
    port_param, user_param, password_param = "pg_port", "pg_user", "pg_pass"

    @pytest.fixture
    def db_conn(self, pg_conn: Any) -> Any:
        return pg_conn

    @pytest.fixture
    def space(self, pg_schema: str) -> str:
        return pg_schema

    def params(self) -> dict[str, Any]:
        return pg_params()

    def create_numbers(self, conn: Any, space: str, rows: int) -> None:
        _numbers(conn, space, rows)

    def create_streaming_table(self, conn: Any, space: str) -> dict[str, Any]:
        # 100,000 rows in 64 KiB batches: many batches still to come after the first.
        _numbers(conn, space, rows=100_000)
        return {"pg_batch_bytes": 65536}

    def kill_streaming_session(self, conn: Any, space: str) -> None:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE query LIKE %s AND pid <> pg_backend_pid()",
            (f'%{space}"."nums"%',),
        )


class TestSchemaAndTypes:
    def test_schema_maps_every_common_type(self, pg_conn: Any, pg_schema: str) -> None:
        """schema() gives the Arrow type of each column from the catalog, with decimal precision/scale."""
        pg_conn.execute(ALL_TYPES_DDL.format(s=pg_schema))
        schema = _source(pg_schema, "all_types").schema(duckdb.connect())
        assert schema.field("n").type == pa.decimal128(12, 3)
        assert schema.field("nu").type == pa.decimal128(38, 10)
        assert schema.field("tstz").type == pa.timestamp("us", tz="UTC")
        assert schema.field("ts").type == pa.timestamp("us")
        assert schema.field("iv").type == pa.month_day_nano_interval()
        assert schema.field("u").type == pa.uuid()
        assert schema.field("j").type == pa.json_()
        assert schema.field("ai").type == pa.list_(pa.int32())
        assert schema.field("m").type == pa.string()

    def test_round_trip_into_duckdb(self, pg_conn: Any, pg_schema: str) -> None:
        """Every common type lands in DuckDB with its meaning: types, values, and an all-NULL row."""
        pg_conn.execute(ALL_TYPES_DDL.format(s=pg_schema))
        src = _source(pg_schema, "all_types")
        con = duckdb.connect()
        load(src.scan(ScanRequest(), con), con)
        types = dict((r[0], r[1]) for r in con.execute("DESCRIBE t").fetchall())
        assert types == {
            "id": "BIGINT", "i2": "SMALLINT", "i4": "INTEGER", "f4": "FLOAT", "f8": "DOUBLE",
            "n": "DECIMAL(12,3)", "nu": "DECIMAL(38,10)", "b": "BOOLEAN", "t": "VARCHAR", "vc": "VARCHAR",
            "ch": "VARCHAR", "bt": "BLOB", "d": "DATE", "ts": "TIMESTAMP", "tstz": "TIMESTAMP WITH TIME ZONE",
            "iv": "INTERVAL", "j": "JSON", "jb": "JSON", "u": "UUID", "ai": "INTEGER[]", "tx": "VARCHAR[]",
            "tm": "TIME", "ip": "VARCHAR", "m": "VARCHAR",
        }  # fmt: skip
        row = con.execute(
            "SELECT i2, n, nu, b, t, ch, bt, d, ts, epoch_us(tstz), "
            "iv = INTERVAL '1 year 2 months 3 days 04:05:06', j->>'$.a[1]', u, ai, tx, tm, ip, m "
            "FROM t WHERE id = 1"
        ).fetchall()[0]
        assert row == (
            -2, decimal.Decimal("123456789.123"), decimal.Decimal("1.1234567890"), True, "héllo", "x  ",
            b"\x00\xff", dt.date(2024, 2, 29), dt.datetime(2024, 1, 2, 3, 4, 5, 123456),
            int(dt.datetime(2024, 1, 2, 1, 4, 5, 500000, tzinfo=dt.UTC).timestamp() * 1_000_000),
            True, "2", uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), [1, None, 3], ["a", "b c"],
            dt.time(23, 59, 59, 999999), "10.0.0.1/8", "happy",
        )  # fmt: skip
        nulls = con.execute("SELECT * EXCLUDE (id) FROM t WHERE id = 2").fetchall()[0]
        assert all(v is None for v in nulls)

    def test_unsupported_type_is_terminal_naming_column(self, pg_conn: Any, pg_schema: str) -> None:
        """A column of a type with no DuckDB meaning (point) is a terminal error naming the column."""
        pg_conn.execute(f"CREATE TABLE {pg_schema}.geo (id int, where_at point)")
        with pytest.raises(TerminalRefreshError, match="where_at"):
            _source(pg_schema, "geo").schema(duckdb.connect())

    def test_numeric_wider_than_duckdb_is_terminal(self, pg_conn: Any, pg_schema: str) -> None:
        """NUMERIC(50,2) cannot be a DuckDB DECIMAL: terminal, naming the column."""
        pg_conn.execute(f"CREATE TABLE {pg_schema}.wide (id int, big numeric(50,2))")
        with pytest.raises(TerminalRefreshError, match="big"):
            _source(pg_schema, "wide").schema(duckdb.connect())


class TestPushdown(PgServer, PushdownContract):
    def test_filter_projection_limit_run_on_the_server(self, pg_conn: Any, pg_schema: str) -> None:
        """Only matching rows and requested columns leave the server: the reader yields the filtered count."""
        _numbers(pg_conn, pg_schema)
        src = _source(pg_schema, "nums")
        con = duckdb.connect()
        where = '"id" % 100 = 0 AND "k" IN (1, 2, 3)'
        load(src.scan(ScanRequest(columns=("id", "label"), where=where), con), con, where='"id" % 100 = 0')
        expected = sum(1 for g in range(1, 1001) if g % 100 == 0 and g % 7 in (1, 2, 3))
        assert src.rows_streamed == expected
        assert con.execute("SELECT count(*) FROM t").fetchall() == [(expected,)]
        assert [r[0] for r in con.execute("DESCRIBE t").fetchall()] == ["id", "label"]
        assert src.last_query is not None and '"k"' not in src.last_query.split("WHERE")[0]

    def test_pushdown_is_measurable_in_pg_stat(self, pg_conn: Any, pg_schema: str) -> None:
        """The server's own statistics: an indexed 1% filter reads ~1% of the table's tuples."""
        _numbers(pg_conn, pg_schema, rows=10_000)
        pg_conn.execute(f"CREATE INDEX ON {pg_schema}.nums (id)")
        pg_conn.execute(f"ANALYZE {pg_schema}.nums")
        before = _tuples_read(pg_conn, pg_schema)
        src = _source(pg_schema, "nums")
        con = duckdb.connect()
        load(src.scan(ScanRequest(where='"id" <= 100'), con), con)
        assert src.rows_streamed == 100
        deadline = time.monotonic() + 5
        while (read := _tuples_read(pg_conn, pg_schema) - before) < 100 and time.monotonic() < deadline:
            time.sleep(0.05)  # the server flushes a session's statistics asynchronously
        assert read == 100

    def test_timestamp_filter_matches_duckdb_in_another_time_zone(self, pg_conn: Any, pg_schema: str) -> None:
        """The server compares timestamps in DuckDB's TimeZone, so pushdown never drops a row DuckDB keeps."""
        _numbers(pg_conn, pg_schema, rows=600)
        con = duckdb.connect()
        con.execute("SET TimeZone = 'America/New_York'").fetchall()
        where = "\"at\" > TIMESTAMP '2023-12-31 22:00:00'"  # New York wall time = 03:00 UTC on Jan 1
        src = _source(pg_schema, "nums")
        load(src.scan(ScanRequest(where=where), con), con, where=where)
        assert src.rows_streamed == 600 - 180
        assert con.execute("SELECT count(*) FROM t").fetchall() == [(420,)]


class TestFailures(PgServer, FailureContract):
    """The failure contract (_database_contract.py) against PostgreSQL."""


class TestConnectionForms:
    def test_airflow_connection_id(
        self, pg_conn: Any, pg_schema: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """postgres_conn_id reads host/port/login/schema from an Airflow connection."""
        from servers import PG_HOST, PG_PORT, PG_USER

        monkeypatch.setenv("AIRFLOW_CONN_ACCEL_TEST_PG", f"postgres://{PG_USER}@{PG_HOST}:{PG_PORT}/test")
        _numbers(pg_conn, pg_schema, rows=3)
        src = source_for(dataset(f"postgres:{pg_schema}.nums", {"postgres_conn_id": "accel_test_pg"}))
        con = duckdb.connect()
        load(src.scan(ScanRequest(), con), con)
        assert con.execute("SELECT count(*) FROM t").fetchall() == [(3,)]

    def test_connection_string_and_env_placeholder(
        self, pg_conn: Any, pg_schema: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """pg_connection_string works, with a ${env:..} placeholder resolved at refresh time."""
        from servers import PG_HOST, PG_PORT, PG_USER

        monkeypatch.setenv("ACCEL_TEST_PG_URI", f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/test")
        _numbers(pg_conn, pg_schema, rows=4)
        src = source_for(
            dataset(f"postgres:{pg_schema}.nums", {"pg_connection_string": "${env:ACCEL_TEST_PG_URI}"})
        )
        con = duckdb.connect()
        load(src.scan(ScanRequest(), con), con)
        assert con.execute("SELECT count(*) FROM t").fetchall() == [(4,)]
