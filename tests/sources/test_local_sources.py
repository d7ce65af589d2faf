"""SQLite (``sqlite:table``) and DuckDB-file (``duckdb:db.schema.table``) sources."""

from __future__ import annotations

import datetime as dt
import decimal
import sqlite3
import uuid
from pathlib import Path

import duckdb
import pytest

from airflow_provider_accel.exceptions import TerminalRefreshError, TransientRefreshError
from airflow_provider_accel.sources import source_for
from airflow_provider_accel.sources.base import ScanRequest
from airflow_provider_accel.sources.duckdb_file import DuckDBFileSource
from airflow_provider_accel.sources.sqlite import SqliteSource

from ._helpers import dataset, load


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Path:
    path = tmp_path / "src.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE all_types (id INTEGER PRIMARY KEY, n NUMERIC(10,2), r REAL, b BOOLEAN, t TEXT,
            v VARCHAR(10), bl BLOB, d DATE, ts DATETIME, tz TIMESTAMPTZ, j JSON, u UUID, tm TIME);
        INSERT INTO all_types VALUES (1, 12.34, 0.1, 1, 'héllo', 'v', x'00ff', '2024-02-29',
            '2024-01-02 03:04:05.123456', '2024-01-02T03:04:05+02:00', '{"a": [1, 2]}',
            'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '12:34:56');
        INSERT INTO all_types (id) VALUES (2);
        CREATE TABLE nums (id INTEGER, k INTEGER, label TEXT);
        WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < 1000)
        INSERT INTO nums SELECT g, g % 7, 'row ' || g FROM s;
        CREATE TABLE untyped (id, x);
        CREATE TABLE dirty (id INTEGER, amount INTEGER);
        INSERT INTO dirty VALUES (1, 5), (2, 'five');
        """
    )
    conn.commit()
    conn.close()
    return path


def _lite(path: Path, table: str) -> SqliteSource:
    src = source_for(dataset(f"sqlite:{table}", {"sqlite_file": str(path)}))
    assert isinstance(src, SqliteSource)
    return src


class TestSqlite:
    def test_round_trip_into_duckdb(self, sqlite_file: Path) -> None:
        """Declared SQLite types become meaningful DuckDB types; NULLs stay NULL."""
        src = _lite(sqlite_file, "all_types")
        con = duckdb.connect()
        load(src.scan(ScanRequest(), con), con)
        types = [r[1] for r in con.execute("DESCRIBE t").fetchall()]
        assert types == [
            "BIGINT", "DECIMAL(10,2)", "DOUBLE", "BOOLEAN", "VARCHAR", "VARCHAR", "BLOB", "DATE", "TIMESTAMP",
            "TIMESTAMP WITH TIME ZONE", "JSON", "UUID", "TIME",
        ]  # fmt: skip
        row = con.execute(
            "SELECT n, r, b, t, bl, d, ts, epoch(tz), j->>'$.a[1]', u, tm FROM t WHERE id = 1"
        ).fetchall()
        assert row == [
            (
                decimal.Decimal("12.34"), 0.1, True, "héllo", b"\x00\xff", dt.date(2024, 2, 29),
                dt.datetime(2024, 1, 2, 3, 4, 5, 123456),
                dt.datetime(2024, 1, 2, 1, 4, 5, tzinfo=dt.UTC).timestamp(),
                "2", uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), dt.time(12, 34, 56),
            )
        ]  # fmt: skip
        assert all(v is None for v in con.execute("SELECT * EXCLUDE (id) FROM t WHERE id = 2").fetchall()[0])

    def test_pushdown_filters_in_sqlite(self, sqlite_file: Path) -> None:
        """Filter, projection and limit run inside SQLite: the reader yields only matching rows."""
        src = _lite(sqlite_file, "nums")
        con = duckdb.connect()
        load(src.scan(ScanRequest(columns=("id",), where='"id" % 100 = 0 AND "k" <> 0'), con), con)
        expected = sum(1 for g in range(100, 1001, 100) if g % 7)
        assert src.rows_streamed == expected
        src.close()
        load(src.scan(ScanRequest(where='"k" = 1', limit=3), con), con, table="t2")
        assert src.rows_streamed == 3

    def test_untyped_column_is_terminal_naming_it(self, sqlite_file: Path) -> None:
        """A column without a declared type has no meaning to carry: terminal, naming it."""
        with pytest.raises(TerminalRefreshError, match="'id'"):
            _lite(sqlite_file, "untyped").schema(duckdb.connect())

    def test_value_not_fitting_declared_type_is_terminal(self, sqlite_file: Path) -> None:
        """Text stored in an INTEGER column is a terminal error naming the column, not a silent cast."""
        src = _lite(sqlite_file, "dirty")
        con = duckdb.connect()
        with pytest.raises(duckdb.Error, match="amount"):
            load(src.scan(ScanRequest(), con), con)
        assert isinstance(src.stream_error, TerminalRefreshError)

    def test_missing_table_and_file_are_terminal(self, sqlite_file: Path, tmp_path: Path) -> None:
        """A missing table or a missing file is terminal."""
        with pytest.raises(TerminalRefreshError, match="nope"):
            _lite(sqlite_file, "nope").schema(duckdb.connect())
        with pytest.raises(TerminalRefreshError, match="does not exist"):
            _lite(tmp_path / "absent.sqlite", "nums").schema(duckdb.connect())

    def test_locked_database_is_transient(self, sqlite_file: Path) -> None:
        """A database locked by a writer (SQLITE_BUSY) is transient."""
        src = _lite(sqlite_file, "nums")
        err = sqlite3.OperationalError("database is locked")
        err.sqlite_errorcode = 5  # type: ignore[attr-defined]
        assert isinstance(src.classify(err), TransientRefreshError)


@pytest.fixture
def duck_file(tmp_path: Path) -> Path:
    path = tmp_path / "other.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(
            "CREATE SCHEMA s; CREATE TABLE s.events AS SELECT range AS id, range % 10 AS k, "
            "DATE '2024-01-01' + range::INT AS d, [range, range + 1] AS l, {'a': range} AS st, "
            "INTERVAL 1 DAY * range AS iv, uuid() AS u, 1.5::DECIMAL(18,3) AS dec FROM range(100); "
            "CREATE TABLE plain AS SELECT 1 AS x"
        ).fetchall()
    return path


class TestDuckDBFile:
    def test_round_trip_and_native_pushdown(self, duck_file: Path) -> None:
        """The other file's table is read natively (types identical) and filters reach DuckDB's own scan."""
        src = source_for(dataset("duckdb:other.s.events", {"duckdb_open": str(duck_file)}))
        assert isinstance(src, DuckDBFileSource)
        con = duckdb.connect()
        src.prepare(con)
        assert src.schema(con).names == ["id", "k", "d", "l", "st", "iv", "u", "dec"]
        scan = src.scan(ScanRequest(), con)
        assert scan.duckdb_sql is not None
        load(scan, con, where='"k" = 3')
        assert con.execute("SELECT count(*) FROM t").fetchall() == [(10,)]
        with duckdb.connect(str(duck_file), read_only=True) as other:
            want = other.execute("SELECT column_type FROM (DESCRIBE s.events)").fetchall()
        assert con.execute("SELECT column_type FROM (DESCRIBE t)").fetchall() == want
        plan = con.execute(f"EXPLAIN SELECT * FROM ({scan.duckdb_sql}) WHERE k = 3").fetchall()[0][1]
        assert "Filters" in plan or "k=3" in plan.replace(" ", "")

    def test_short_forms_and_detach_on_close(self, duck_file: Path) -> None:
        """duckdb:table reads main; close() detaches the file from the accelerator's connection."""
        src = source_for(dataset("duckdb:plain", {"duckdb_open": str(duck_file)}))
        con = duckdb.connect()
        load(src.scan(ScanRequest(), con), con)
        attached = {r[0] for r in con.execute("SELECT database_name FROM duckdb_databases()").fetchall()}
        assert any(a.startswith("accel_src_") for a in attached)
        src.close()
        attached = {r[0] for r in con.execute("SELECT database_name FROM duckdb_databases()").fetchall()}
        assert not any(a.startswith("accel_src_") for a in attached)

    def test_read_only(self, duck_file: Path) -> None:
        """The other file is attached read-only: a write through the alias fails."""
        src = source_for(dataset("duckdb:s.events", {"duckdb_open": str(duck_file)}))
        con = duckdb.connect()
        src.scan(ScanRequest(), con)
        alias = next(r[0] for r in con.execute("SELECT database_name FROM duckdb_databases()").fetchall()
                     if r[0].startswith("accel_src_"))  # fmt: skip
        with pytest.raises(duckdb.Error, match=r"read-only|read only"):
            con.execute(f'DELETE FROM "{alias}".s.events').fetchall()

    def test_missing_table_and_file_are_terminal(self, duck_file: Path, tmp_path: Path) -> None:
        """A missing table or file is terminal."""
        with pytest.raises(TerminalRefreshError):
            source_for(dataset("duckdb:s.nope", {"duckdb_open": str(duck_file)})).schema(duckdb.connect())
        with pytest.raises(TerminalRefreshError):
            source_for(dataset("duckdb:t", {"duckdb_open": str(tmp_path / "x.duckdb")})).schema(
                duckdb.connect()
            )

    def test_file_locked_by_a_writer_is_transient(self, duck_file: Path) -> None:
        """Another process writing the file holds its lock: transient (retried)."""
        import subprocess
        import sys

        holder = subprocess.Popen(
            [
                sys.executable,
                "-c",
                f"import duckdb, time; c = duckdb.connect({str(duck_file)!r}); "
                "print('ok', flush=True); time.sleep(30)",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "ok"
            with pytest.raises(TransientRefreshError):
                source_for(dataset("duckdb:plain", {"duckdb_open": str(duck_file)})).schema(duckdb.connect())
        finally:
            holder.kill()
            holder.wait()
