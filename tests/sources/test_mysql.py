"""MySQL/MariaDB source (``mysql:db.table``): types, pushdown, failures, against the real server."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from airflow_provider_accel.exceptions import TerminalRefreshError
from airflow_provider_accel.sources import source_for
from airflow_provider_accel.sources.base import ScanRequest
from airflow_provider_accel.sources.mysql import MySQLSource

from ._database_contract import DatabaseServer, FailureContract, PushdownContract
from ._helpers import dataset, load, mysql_exec, mysql_params

ALL_TYPES = [
    """CREATE TABLE {db}.all_types (id bigint primary key, ti tinyint, tu tinyint unsigned, bo boolean,
    si smallint, mi mediumint, i int, iu int unsigned, bi bigint, bu bigint unsigned, de decimal(12,3),
    fl float, db double, ch char(3), vc varchar(10), tx text, en enum('a','b'), st set('x','y'),
    bn binary(2), vb varbinary(5), bl blob, d date, dtm datetime(6), ts timestamp(6) null, tm time(6),
    yr year, js json, u uuid, b1 bit(1), b8 bit(8), ip inet6)""",
    """INSERT INTO {db}.all_types VALUES (1, -1, 255, true, -300, 100000, -5, 4000000000, -9000000000,
    18446744073709551615, 123456789.123, 1.5, 2.5, 'ab', 'héllo', 'long text', 'b', 'x,y', 'ab', 'xyz',
    'blob', '2024-02-29', '2024-01-02 03:04:05.123456', '2024-01-02 03:04:05.5', '12:34:56.5', 2024,
    '{{"a": [1, 2]}}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', b'1', b'10000001', '::1')""",
    "INSERT INTO {db}.all_types (id) VALUES (2)",
]


def _source(db: str, table: str, **params: Any) -> MySQLSource:
    src = source_for(dataset(f"mysql:{db}.{table}", {**mysql_params(), **params}))
    assert isinstance(src, MySQLSource)
    return src


def _numbers(conn: Any, db: str, rows: int = 1000) -> None:
    mysql_exec(
        conn,
        f"CREATE TABLE {db}.nums (id int primary key, k int, label varchar(20), at datetime)",
        f"INSERT INTO {db}.nums SELECT seq, seq % 7, concat('row ', seq), "
        f"timestamp'2024-01-01 00:00:00' + interval seq minute FROM {db}.seq_1_to_{rows}",
    )


class MySQLServer(DatabaseServer):
    scheme = "mysql"
    source_class = MySQLSource
    any_table = "test.t"
    port_param, user_param, password_param = "mysql_tcp_port", "mysql_user", "mysql_pass"

    @pytest.fixture
    def db_conn(self, mysql_conn: Any) -> Any:
        return mysql_conn

    @pytest.fixture
    def space(self, mysql_db: str) -> str:
        return mysql_db

    def params(self) -> dict[str, Any]:
        return mysql_params()

    def create_numbers(self, conn: Any, space: str, rows: int) -> None:
        _numbers(conn, space, rows)

    def create_streaming_table(self, conn: Any, space: str) -> dict[str, Any]:
        # ~50 MB of rows: far more than the socket buffers hold, so the server is still sending
        # (and the query still listed) when it is killed, however slowly this machine runs.
        mysql_exec(
            conn,
            f"CREATE TABLE {space}.nums (id int primary key, pad varchar(1000))",
            f"INSERT INTO {space}.nums SELECT seq, repeat('x', 1000) FROM {space}.seq_1_to_50000",
        )
        return {"mysql_batch_rows": 100}

    def kill_streaming_session(self, conn: Any, space: str) -> None:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT id FROM information_schema.PROCESSLIST WHERE INFO LIKE %s AND id <> CONNECTION_ID()",
                (f"%{space}%nums%",),
            )
            for (pid,) in cur.fetchall():
                cur.execute(f"KILL {int(pid)}")


class TestSchemaAndTypes:
    def test_round_trip_into_duckdb(self, mysql_conn: Any, mysql_db: str) -> None:
        """Every common MySQL/MariaDB type lands in DuckDB with its meaning, and NULLs stay NULL."""
        mysql_exec(mysql_conn, *(s.format(db=mysql_db) for s in ALL_TYPES))
        src = _source(mysql_db, "all_types")
        con = duckdb.connect()
        assert src.schema(con).field("js").type == pa.json_()
        load(src.scan(ScanRequest(), con), con)
        types = dict((r[0], r[1]) for r in con.execute("DESCRIBE t").fetchall())
        assert types == {
            "id": "BIGINT", "ti": "TINYINT", "tu": "UTINYINT", "bo": "BOOLEAN", "si": "SMALLINT",
            "mi": "INTEGER", "i": "INTEGER", "iu": "UINTEGER", "bi": "BIGINT", "bu": "UBIGINT",
            "de": "DECIMAL(12,3)", "fl": "FLOAT", "db": "DOUBLE", "ch": "VARCHAR", "vc": "VARCHAR",
            "tx": "VARCHAR", "en": "VARCHAR", "st": "VARCHAR", "bn": "BLOB", "vb": "BLOB", "bl": "BLOB",
            "d": "DATE", "dtm": "TIMESTAMP", "ts": "TIMESTAMP WITH TIME ZONE", "tm": "TIME",
            "yr": "SMALLINT", "js": "JSON", "u": "UUID", "b1": "BOOLEAN", "b8": "UBIGINT", "ip": "VARCHAR",
        }  # fmt: skip
        row = con.execute(
            "SELECT bo, bu, de, vc, st, bn, d, dtm, tm, js->>'$.a[1]', u, b8 FROM t WHERE id = 1"
        ).fetchall()[0]
        assert row == (
            True, 18446744073709551615, decimal.Decimal("123456789.123"), "héllo", "x,y", b"ab",
            dt.date(2024, 2, 29), dt.datetime(2024, 1, 2, 3, 4, 5, 123456), dt.time(12, 34, 56, 500000), "2",
            uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), 129,
        )  # fmt: skip
        # TIMESTAMP is an instant: what the server stores in UTC is what DuckDB holds.
        (utc,) = con.execute("SELECT epoch_us(ts) FROM t WHERE id = 1").fetchall()[0]
        with mysql_conn.cursor() as cur:
            cur.execute(f"SELECT UNIX_TIMESTAMP(ts) FROM {mysql_db}.all_types WHERE id = 1")
            assert utc == int(cur.fetchone()[0] * 1_000_000)
        nulls = con.execute("SELECT * EXCLUDE (id) FROM t WHERE id = 2").fetchall()[0]
        assert all(v is None for v in nulls)

    def test_unsupported_type_is_terminal_naming_column(self, mysql_conn: Any, mysql_db: str) -> None:
        """A geometry column has no DuckDB meaning here: terminal, naming the column."""
        mysql_exec(mysql_conn, f"CREATE TABLE {mysql_db}.geo (id int, spot point)")
        with pytest.raises(TerminalRefreshError, match="spot"):
            _source(mysql_db, "geo").schema(duckdb.connect())


class TestPushdown(MySQLServer, PushdownContract):
    def test_filter_projection_limit_run_on_the_server(self, mysql_conn: Any, mysql_db: str) -> None:
        """Only matching rows and requested columns travel: the reader yields exactly the filtered count."""
        _numbers(mysql_conn, mysql_db)
        src = _source(mysql_db, "nums", mysql_batch_rows=7)
        con = duckdb.connect()
        where = '"id" % 100 = 0 AND "at" > TIMESTAMP \'2024-01-01 05:00:00\''
        load(src.scan(ScanRequest(columns=("id", "label"), where=where), con), con)
        assert src.rows_streamed == 7  # ids 400, 500, ..., 1000
        assert con.execute("SELECT count(*) FROM t").fetchall() == [(7,)]
        assert [r[0] for r in con.execute("DESCRIBE t").fetchall()] == ["id", "label"]


class TestFailures(MySQLServer, FailureContract):
    """The failure contract (_database_contract.py) against MySQL/MariaDB."""


def test_airflow_connection_id(mysql_conn: Any, mysql_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """mysql_conn_id reads host/port/login/password from an Airflow connection; from: names the database."""
    from servers import MYSQL_HOST, MYSQL_PASSWORD, MYSQL_PORT, MYSQL_USER

    monkeypatch.setenv(
        "AIRFLOW_CONN_ACCEL_TEST_MYSQL",
        f'{{"conn_type": "mysql", "host": "{MYSQL_HOST}", "port": {MYSQL_PORT}, "login": "{MYSQL_USER}", '
        f'"password": "{MYSQL_PASSWORD}"}}',
    )
    _numbers(mysql_conn, mysql_db, rows=3)
    src = source_for(dataset(f"mysql:{mysql_db}.nums", {"mysql_conn_id": "accel_test_mysql"}))
    con = duckdb.connect()
    load(src.scan(ScanRequest(), con), con)
    assert con.execute("SELECT count(*) FROM t").fetchall() == [(3,)]
