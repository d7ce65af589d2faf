"""ODBC source (``odbc:path.to.table``): the machine's PostgreSQL and MariaDB through Debian's ODBC
drivers (scripts/odbc.sh): types, pushdown proven by the query the server ran, appends, failures."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from servers import MYSQL_HOST, MYSQL_PORT, MYSQL_USER, PG_HOST, PG_PORT, PG_USER, services_required

from airflow_provider_accel.accelerator import DuckDBAcceleratorHook
from airflow_provider_accel.exceptions import TerminalRefreshError, TransientRefreshError
from airflow_provider_accel.sources import source_for
from airflow_provider_accel.sources.base import ScanRequest
from airflow_provider_accel.sources.odbc import OdbcSource, parse_connection_string
from airflow_provider_accel.spicepod.model import RefreshMode

from ._database_contract import PASSWORD, DatabaseServer, PushdownContract
from ._helpers import PG_DB, accelerated, dataset, load, mysql_exec

PG_DRIVER = "PostgreSQL Unicode"
MARIADB_DRIVER = "MariaDB Unicode"


def require_driver(name: str) -> None:
    """Skip (laptop) or fail (CI) unless arrow-odbc loads and unixODBC knows the driver ``name``."""
    reason = None
    try:
        import arrow_odbc  # noqa: F401
    except (ImportError, OSError) as err:
        reason = f"arrow-odbc does not load ({err})"
    if reason is None:
        odbcinst = shutil.which("odbcinst")
        listed = subprocess.run([odbcinst, "-q", "-d"], capture_output=True, text=True) if odbcinst else None
        if listed is None or f"[{name}]" not in listed.stdout:
            reason = f"the ODBC driver {name!r} is not registered with unixODBC"
    if reason is not None:
        message = f"!!! {reason}; run scripts/odbc.sh (installs unixODBC and Debian's drivers)."
        if services_required():
            pytest.fail(message)
        pytest.skip(message)


def pg_odbc(**overrides: Any) -> str:
    keys = {"Driver": "{" + PG_DRIVER + "}", "Server": PG_HOST, "Port": PG_PORT, "Database": PG_DB}
    keys["Uid"] = PG_USER
    keys.update(overrides)
    return ";".join(f"{k}={v}" for k, v in keys.items())


def mariadb_odbc(**overrides: Any) -> str:
    keys = {"Driver": "{" + MARIADB_DRIVER + "}", "Server": MYSQL_HOST, "Port": MYSQL_PORT}
    keys["Uid"] = MYSQL_USER
    keys.update(overrides)
    return ";".join(f"{k}={v}" for k, v in keys.items())


def _tuples_read(pg_conn: Any, schema: str) -> int:
    """Tuples the server read from ``schema.nums`` so far (sequential + through an index)."""
    row = pg_conn.execute(
        "SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) FROM pg_stat_user_tables "
        "WHERE schemaname = %s AND relname = 'nums'",
        (schema,),
    ).fetchone()
    return int(row[0])


class OdbcPg(DatabaseServer):
    scheme = "odbc"
    source_class = OdbcSource
    any_table = "public.t"

    @pytest.fixture
    def db_conn(self, pg_conn: Any) -> Any:
        require_driver(PG_DRIVER)
        return pg_conn

    @pytest.fixture
    def space(self, pg_schema: str) -> str:
        return pg_schema

    def params(self) -> dict[str, Any]:
        return {"odbc_connection_string": pg_odbc()}

    def create_numbers(self, conn: Any, space: str, rows: int) -> None:
        conn.execute(
            f"CREATE TABLE {space}.nums AS SELECT g AS id, g % 7 AS k, 'row ' || g AS label, "
            f"timestamp '2024-01-01 00:00:00' + g * interval '1 minute' AS at "
            f"FROM generate_series(1, {rows}) g"
        )

    def create_streaming_table(self, conn: Any, space: str) -> dict[str, Any]:
        self.create_numbers(conn, space, 200_000)
        return {"odbc_max_num_rows_per_batch": 1000}

    def kill_streaming_session(self, conn: Any, space: str) -> None:
        # By the lock its open cursor holds on the table: pg_stat_activity.query is no guide, since
        # after DECLARE ... CURSOR psqlodbc runs a catalog query for the column metadata, and that is
        # what the session shows while the client reads the rows already fetched.
        killed = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks "
            "WHERE relation = to_regclass(%s) AND pid <> pg_backend_pid()",
            (f'"{space}"."nums"',),
        ).fetchall()
        assert killed == [(True,)], f"expected one session reading {space}.nums, terminated {killed}"


class OdbcMariaDB(DatabaseServer):
    scheme = "odbc"
    source_class = OdbcSource
    any_table = "test.t"

    @pytest.fixture
    def db_conn(self, mysql_conn: Any) -> Any:
        require_driver(MARIADB_DRIVER)
        return mysql_conn

    @pytest.fixture
    def space(self, mysql_db: str) -> str:
        return mysql_db

    def params(self) -> dict[str, Any]:
        return {"odbc_connection_string": mariadb_odbc()}

    def create_numbers(self, conn: Any, space: str, rows: int) -> None:
        mysql_exec(
            conn,
            f"CREATE TABLE {space}.nums (id int primary key, k int, label varchar(20), at datetime)",
            f"INSERT INTO {space}.nums SELECT seq, seq % 7, concat('row ', seq), "
            f"timestamp'2024-01-01 00:00:00' + interval seq minute FROM {space}.seq_1_to_{rows}",
        )

    def create_streaming_table(self, conn: Any, space: str) -> dict[str, Any]:
        mysql_exec(
            conn,
            f"CREATE TABLE {space}.nums (id int primary key, pad varchar(1000))",
            f"INSERT INTO {space}.nums SELECT seq, repeat('x', 1000) FROM {space}.seq_1_to_50000",
        )
        # Database= names the session in PROCESSLIST while it sits between two chunks (no query).
        return {"odbc_max_num_rows_per_batch": 100, "odbc_connection_string": mariadb_odbc(Database=space)}

    def kill_streaming_session(self, conn: Any, space: str) -> None:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT id FROM information_schema.PROCESSLIST WHERE DB = %s AND id <> CONNECTION_ID()",
                (space,),
            )
            sessions = [int(pid) for (pid,) in cur.fetchall()]
            assert len(sessions) == 1, f"expected one session on {space}, found {sessions}"
            cur.execute(f"KILL {sessions[0]}")


class FailureContract(DatabaseServer):
    """The database failure contract, with the credentials and port inside the connection string."""

    def connection_string(self, **overrides: Any) -> str:
        raise NotImplementedError

    def test_unreachable_server_is_transient(self) -> None:
        """Nothing listening on the port: transient, naming dataset and source, never the password."""
        from_ = f"odbc:{self.any_table}"
        params = {"odbc_connection_string": self.connection_string(Port=1, Pwd=PASSWORD)}
        with pytest.raises(TransientRefreshError) as info:
            source_for(dataset(from_, params)).schema(duckdb.connect())
        message = str(info.value)
        assert "ds" in message and from_ in message and PASSWORD not in message

    def test_bad_credentials_are_terminal(self) -> None:
        """The server refusing the login (unknown user) is terminal, naming the user, never the password."""
        params = {"odbc_connection_string": self.connection_string(Uid="no_such_user_accel", Pwd=PASSWORD)}
        with pytest.raises(TerminalRefreshError) as info:
            source_for(dataset(f"odbc:{self.any_table}", params)).schema(duckdb.connect())
        assert "no_such_user_accel" in str(info.value) and PASSWORD not in str(info.value)

    def test_missing_table_is_terminal(self, db_conn: Any, space: str) -> None:
        """A table that does not exist is terminal and named in the message."""
        with pytest.raises(TerminalRefreshError, match="nope"):
            self.source(space, "nope").schema(duckdb.connect())

    def test_dropped_connection_mid_stream_is_transient(self, db_conn: Any, space: str) -> None:
        """The server killing the session while rows stream is transient, recorded on the source."""
        params = self.create_streaming_table(db_conn, space)
        src = self.source(space, "nums", **params)
        scan = src.scan(ScanRequest(), duckdb.connect())
        assert scan.reader is not None
        assert scan.reader.read_next_batch().num_rows > 0
        self.kill_streaming_session(db_conn, space)
        with pytest.raises(TransientRefreshError):
            for _ in scan.reader:
                pass
        assert isinstance(src.stream_error, TransientRefreshError)


class TestPgPushdown(OdbcPg, PushdownContract):
    def test_filter_runs_on_the_server(self, db_conn: Any, space: str) -> None:
        """The server's own statistics: an indexed 1% filter reads 1% of the tuples; the query has it."""
        self.create_numbers(db_conn, space, rows=10_000)
        db_conn.execute(f"CREATE INDEX ON {space}.nums (id)")
        db_conn.execute(f"ANALYZE {space}.nums")
        before = _tuples_read(db_conn, space)
        src = self.source(space, "nums")
        con = duckdb.connect()
        load(src.scan(ScanRequest(columns=("id", "label"), where='"id" <= 100'), con), con)
        assert src.rows_streamed == 100
        assert src.last_query == f'SELECT "id", "label" FROM "{space}"."nums" WHERE "id" <= 100'
        deadline = time.monotonic() + 5
        while (read := _tuples_read(db_conn, space) - before) < 100 and time.monotonic() < deadline:
            time.sleep(0.05)  # the server flushes a session's statistics asynchronously
        assert read == 100

    def test_filter_reads_fewer_rows(self, db_conn: Any, space: str) -> None:
        """Only matching rows leave the server: the reader yields the filtered count."""
        self.create_numbers(db_conn, space, rows=1000)
        src = self.source(space, "nums")
        con = duckdb.connect()
        load(src.scan(ScanRequest(where='"id" % 100 = 0'), con), con)
        assert src.rows_streamed == 10
        assert con.execute("SELECT count(*) FROM t").fetchall() == [(10,)]


class TestMariaDBPushdown(OdbcMariaDB, PushdownContract):
    def test_filter_and_projection_are_in_the_query_sent(self, db_conn: Any, space: str) -> None:
        """The query sent has backtick-quoted columns and the filter; only matching rows arrive."""
        self.create_numbers(db_conn, space, rows=1000)
        src = self.source(space, "nums")
        con = duckdb.connect()
        load(src.scan(ScanRequest(columns=("id",), where='"id" > 990'), con), con)
        assert (
            src.last_query
            == f"SELECT `id` FROM `{space}`.`nums` WHERE (`id` > 990) ORDER BY `id` LIMIT 65536"
        )
        assert src.rows_streamed == 10

    def test_table_with_a_primary_key_is_read_in_keyed_chunks(self, db_conn: Any, space: str) -> None:
        """By primary key, a chunk at a time: every row once, filter and LIMIT kept across chunks."""
        self.create_numbers(db_conn, space, rows=1000)
        src = self.source(space, "nums", odbc_max_num_rows_per_batch=64)
        con = duckdb.connect()
        load(src.scan(ScanRequest(columns=("label",)), con), con)
        assert src.chunk_key == "id"
        assert src.rows_streamed == 1000
        assert con.execute("SELECT count(DISTINCT label), min(label), max(label) FROM t").fetchall() == [
            (1000, "row 1", "row 999")
        ]
        con = duckdb.connect()
        load(src.scan(ScanRequest(where='"k" = 3', limit=100), con), con)
        assert src.rows_streamed == 100
        assert con.execute("SELECT count(DISTINCT id), bool_and(k = 3) FROM t").fetchall() == [(100, True)]

    def test_table_without_a_primary_key_is_read_with_one_query(self, db_conn: Any, space: str) -> None:
        """No single-column primary key to page by: one plain SELECT, all rows."""
        mysql_exec(
            db_conn,
            f"CREATE TABLE {space}.pairs (a int, b int, PRIMARY KEY (a, b))",
            f"INSERT INTO {space}.pairs SELECT seq % 10, seq FROM {space}.seq_1_to_300",
        )
        src = self.source(space, "pairs", odbc_max_num_rows_per_batch=64)
        con = duckdb.connect()
        load(src.scan(ScanRequest(), con), con)
        assert src.chunk_key is None and src.last_query == f"SELECT `a`, `b` FROM `{space}`.`pairs`"
        assert src.rows_streamed == 300


class TestPgFailures(OdbcPg, FailureContract):
    def connection_string(self, **overrides: Any) -> str:
        require_driver(PG_DRIVER)
        return pg_odbc(**overrides)


class TestMariaDBFailures(OdbcMariaDB, FailureContract):
    def connection_string(self, **overrides: Any) -> str:
        require_driver(MARIADB_DRIVER)
        return mariadb_odbc(**overrides)


class TestTypes:
    def test_postgres_types_round_trip(self, pg_conn: Any, pg_schema: str) -> None:
        """psqlodbc's types land in DuckDB with their values: booleans, exact unconstrained NUMERIC, bytea."""
        require_driver(PG_DRIVER)
        pg_conn.execute(
            f"CREATE TABLE {pg_schema}.all_types (id int8, i2 int2, f8 float8, n numeric(12,3), nu numeric, "
            "b bool, t text, bt bytea, d date, ts timestamp, tz timestamptz, tm time);"
            f"INSERT INTO {pg_schema}.all_types VALUES (1, -2, 2.25, 123456789.123, 1.123456789, true, "
            "'héllo', '\\x00ff', '2024-02-29', '2024-01-02 03:04:05.123456', '2024-01-02 03:04:05+02', "
            f"'23:59:59'); INSERT INTO {pg_schema}.all_types (id) VALUES (2)"
        )
        params = {"odbc_connection_string": pg_odbc(), "odbc_max_binary_size": 1024}
        src = source_for(dataset(f"odbc:{pg_schema}.all_types", params))
        con = duckdb.connect()
        load(src.scan(ScanRequest(), con), con)
        types = dict((r[0], r[1]) for r in con.execute("DESCRIBE t").fetchall())
        assert types == {
            "id": "BIGINT", "i2": "SMALLINT", "f8": "DOUBLE", "n": "DECIMAL(12,3)", "nu": "DECIMAL(38,10)",
            "b": "BOOLEAN", "t": "VARCHAR", "bt": "BLOB", "d": "DATE", "ts": "TIMESTAMP", "tz": "TIMESTAMP",
            "tm": "TIME",
        }  # fmt: skip
        assert con.execute("SELECT * EXCLUDE (id) FROM t WHERE id = 1").fetchall()[0] == (
            -2, 2.25, decimal.Decimal("123456789.123"), decimal.Decimal("1.1234567890"), True, "héllo",
            b"\x00\xff", dt.date(2024, 2, 29), dt.datetime(2024, 1, 2, 3, 4, 5, 123456),
            dt.datetime(2024, 1, 2, 1, 4, 5), dt.time(23, 59, 59),
        )  # fmt: skip
        assert all(v is None for v in con.execute("SELECT * EXCLUDE (id) FROM t WHERE id = 2").fetchall()[0])

    def test_mariadb_unsigned_and_boolean_types(self, mysql_conn: Any, mysql_db: str) -> None:
        """Unsigned integers keep their values (ODBC reads them as signed) and BOOLEAN is a boolean."""
        require_driver(MARIADB_DRIVER)
        mysql_exec(
            mysql_conn,
            f"CREATE TABLE {mysql_db}.u (i INT UNSIGNED, bi BIGINT UNSIGNED, ti TINYINT UNSIGNED, "
            "ok BOOLEAN, n DECIMAL(10,2), s VARCHAR(10), d DATETIME(6))",
            f"INSERT INTO {mysql_db}.u VALUES (4000000000, 18446744073709551615, 255, TRUE, 1.25, 'é', "
            "'2024-01-02 03:04:05.5')",
        )
        src = source_for(dataset(f"odbc:{mysql_db}.u", {"odbc_connection_string": mariadb_odbc()}))
        schema = src.schema(duckdb.connect())
        assert schema.field("i").type == pa.int64() and schema.field("bi").type == pa.decimal128(20, 0)
        assert schema.field("ok").type == pa.bool_()
        con = duckdb.connect()
        load(src.scan(ScanRequest(), con), con)
        assert con.execute("SELECT * FROM t").fetchall() == [
            (4000000000, decimal.Decimal("18446744073709551615"), 255, True, decimal.Decimal("1.25"), "é",
             dt.datetime(2024, 1, 2, 3, 4, 5, 500000)),
        ]  # fmt: skip

    def test_value_larger_than_the_buffer_is_terminal_naming_the_param(
        self, pg_conn: Any, pg_schema: str
    ) -> None:
        """A text value longer than odbc_max_text_size is a terminal error saying which param to raise."""
        require_driver(PG_DRIVER)
        pg_conn.execute(f"CREATE TABLE {pg_schema}.long AS SELECT repeat('x', 300) AS t")
        params = {"odbc_connection_string": pg_odbc(), "odbc_max_text_size": 10}
        src = source_for(dataset(f"odbc:{pg_schema}.long", params))
        scan = src.scan(ScanRequest(), duckdb.connect())
        assert scan.reader is not None
        with pytest.raises(TerminalRefreshError, match="odbc_max_text_size"):
            scan.reader.read_all()


class TestParams:
    def test_missing_connection_string_is_terminal(self) -> None:
        """No odbc_connection_string: terminal, with Spice's message."""
        with pytest.raises(TerminalRefreshError, match="missing: odbc_connection_string"):
            source_for(dataset("odbc:t", {})).schema(duckdb.connect())

    def test_unknown_sql_dialect_is_terminal(self) -> None:
        """sql_dialect outside Spice's five values is terminal, listing them."""
        params = {"odbc_connection_string": "Driver={X};Server=h", "sql_dialect": "oracle"}
        with pytest.raises(TerminalRefreshError, match="'mysql', 'postgresql'"):
            source_for(dataset("odbc:t", params)).schema(duckdb.connect())

    @pytest.mark.parametrize(
        ("driver", "sql_dialect", "relation"),
        [
            ("{PostgreSQL Unicode}", None, '"s"."t"'),
            ("{MariaDB Unicode}", None, "`s`.`t`"),
            ("/usr/lib/libmyodbc8w.so", None, "`s`.`t`"),
            ("{Some Vendor Driver}", None, '"s"."t"'),
            ("{Some Vendor Driver}", "databricks", "`s`.`t`"),
        ],
    )
    def test_dialect_from_driver_or_sql_dialect(
        self, driver: str, sql_dialect: str | None, relation: str
    ) -> None:
        """The dialect (its identifier quoting) follows sql_dialect, else the Driver= name, as in Spice."""
        params: dict[str, Any] = {"odbc_connection_string": f"Driver={driver};Server=h;Pwd=secret"}
        if sql_dialect:
            params["sql_dialect"] = sql_dialect
        src = source_for(dataset("odbc:s.t", params))
        assert isinstance(src, OdbcSource)
        assert src.relation() == relation
        assert "secret" not in src.description

    def test_connection_string_braces(self) -> None:
        """Braced values keep their semicolons and doubled closing braces."""
        assert parse_connection_string("Driver={A;B}}};Pwd={x;y};Server=h") == [
            ("Driver", "A;B}"),
            ("Pwd", "x;y"),
            ("Server", "h"),
        ]


@pytest.fixture
def hook(tmp_path: Path) -> DuckDBAcceleratorHook:
    return DuckDBAcceleratorHook(data_dir=tmp_path / "accel")


def _events(result_path: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(result_path, read_only=True) as con:
        return con.execute("SELECT id, amount FROM events ORDER BY id").fetchall()


def _dataset(from_: str, connection_string: str) -> Any:
    return accelerated(
        from_,
        {"odbc_connection_string": connection_string},
        name="events",
        time_column="ts",
        acceleration={"refresh_mode": RefreshMode.FULL, "refresh_append_overlap": dt.timedelta(minutes=1)},
    )


class TestRefreshThroughAccelerator:
    def test_postgres_full_then_append_then_failures_keep_data(
        self, hook: DuckDBAcceleratorHook, pg_conn: Any, pg_schema: str
    ) -> None:
        """Full loads the filtered rows; append by time_column adds newer ones; failures keep the data."""
        require_driver(PG_DRIVER)
        pg_conn.execute(
            f"CREATE TABLE {pg_schema}.events AS SELECT g AS id, (g * 1.25)::numeric(10,2) AS amount, "
            f"timestamptz '2024-01-01 00:00:00+00' + g * interval '1 hour' AS ts "
            "FROM generate_series(1, 100) g"
        )
        ds = _dataset(f"odbc:{pg_schema}.events", pg_odbc())
        result = hook.refresh(ds, refresh_sql="SELECT * FROM events WHERE id <= 50")
        assert result.rows == 50 and _events(result.path)[-1] == (50, 62.5)
        pg_conn.execute(
            f"INSERT INTO {pg_schema}.events SELECT g, g * 1.25, "
            f"timestamptz '2024-01-01 00:00:00+00' + g * interval '1 hour' FROM generate_series(101, 110) g"
        )
        appended = hook.refresh(ds, mode=RefreshMode.APPEND)
        # Watermark: id 50's ts minus the 1-minute overlap, so ids 51..110 arrive (50 is a duplicate).
        assert appended.rows == 60 and len(_events(appended.path)) == 110

        with pytest.raises(TransientRefreshError):
            hook.refresh(dataclasses.replace(ds, params={"odbc_connection_string": pg_odbc(Port=1)}))
        pg_conn.execute(f"DROP TABLE {pg_schema}.events")
        with pytest.raises(TerminalRefreshError, match="events"):
            hook.refresh(ds)
        assert len(_events(appended.path)) == 110

    def test_mariadb_full_then_append_then_failure_keeps_data(
        self, hook: DuckDBAcceleratorHook, mysql_conn: Any, mysql_db: str
    ) -> None:
        """Full loads all rows; append by time_column adds the newer ones; a failed refresh keeps them."""
        require_driver(MARIADB_DRIVER)
        mysql_exec(
            mysql_conn,
            f"CREATE TABLE {mysql_db}.events (id int primary key, amount decimal(10,2), ts datetime(6))",
            f"INSERT INTO {mysql_db}.events SELECT seq, seq * 1.25, "
            f"timestamp'2024-01-01 00:00:00' + interval seq hour FROM {mysql_db}.seq_1_to_100",
        )
        ds = _dataset(f"odbc:{mysql_db}.events", mariadb_odbc())
        assert hook.refresh(ds).rows == 100
        mysql_exec(
            mysql_conn,
            f"INSERT INTO {mysql_db}.events SELECT seq, seq * 1.25, "
            f"timestamp'2024-01-01 00:00:00' + interval seq hour FROM {mysql_db}.seq_101_to_105",
        )
        appended = hook.refresh(ds, mode=RefreshMode.APPEND)
        assert appended.rows == 5
        assert _events(appended.path)[-1] == (105, 131.25)
        with pytest.raises(TerminalRefreshError, match="nope"):
            hook.refresh(dataclasses.replace(ds, from_=f"odbc:{mysql_db}.nope"))
        assert len(_events(appended.path)) == 105
