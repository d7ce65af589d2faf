"""The SQLite accelerator: one SQLite file per dataset (or ``params.sqlite_file``), crash-safe.

* **full refresh** — the new table is written into a staging file next to the live one, synced,
  and renamed over it: a reader sees the old file or the new one, never a partial table. When
  several datasets share one ``sqlite_file`` the new table replaces the old one in one transaction.
* **append** — the increment is written into a staging file, attached to the live file, and merged
  with the shared conflict policies in one ``BEGIN IMMEDIATE`` transaction.
* **journal mode** — the default rollback journal, not WAL: a WAL file belongs to the database file
  it was created for, and a file renamed over a live one would pair readers with a stale WAL. With
  the rollback journal a reader waits at most ``busy_timeout`` (Spice's default: 5000 ms) while an
  append commits, and never sees uncommitted rows.

Types follow :data:`SQLITE_TYPES` (data, not code): instants are stored as fixed-width ISO-8601 UTC
text (so ``max()`` and ``<`` order them chronologically), decimals as exact text, lists and structs
as JSON text.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from airflow_provider_accel.accelerator import indexes, schema_change
from airflow_provider_accel.accelerator.conflict import AppendTarget
from airflow_provider_accel.accelerator.engine import SQLITE, EngineCapabilities
from airflow_provider_accel.accelerator.finish import evict_and_index
from airflow_provider_accel.accelerator.layout import (
    atomic_replace,
    fsync_path,
    remove_file,
    remove_staging_leftovers,
    staging_file,
    writer_lock,
)
from airflow_provider_accel.accelerator.sql_engine import ArrowEngineHook, ArrowStream, Written
from airflow_provider_accel.accelerator.strategies import FetchPlan, LiveState
from airflow_provider_accel.accelerator.timefilter import TimeColumn
from airflow_provider_accel.exceptions import (
    RefreshError,
    SourceLockedError,
    TerminalRefreshError,
    TransientRefreshError,
)
from airflow_provider_accel.spicepod.model import Dataset, TimeFormat
from airflow_provider_accel.sql.refresh_sql import quote_identifier

#: Spice's default ``busy_timeout``.
DEFAULT_BUSY_TIMEOUT_MS = 5000
STAGED_ALIAS = "__accel_staged"
_UNSAFE_FILE_CHARS = re.compile(r"[^A-Za-z0-9_.-]")
_TIMESTAMP_TEXT = "%Y-%m-%d %H:%M:%S.%f"

#: DuckDB type (a regular expression on DESCRIBE's text) -> (SQLite declared type, DuckDB expression
#: that produces the stored value from ``{c}``). First match wins; ``None`` keeps the value as it is.
SQLITE_TYPES: tuple[tuple[str, str, str | None], ...] = (
    (r"BOOLEAN", "BOOLEAN", None),
    (r"(U?TINYINT|U?SMALLINT|U?INTEGER|BIGINT)", "INTEGER", None),
    (r"(UBIGINT|U?HUGEINT|UUID)", "TEXT", "CAST({c} AS VARCHAR)"),  # beyond a 64-bit integer
    (r"(FLOAT|DOUBLE)", "REAL", None),
    (r"DECIMAL.*", "TEXT", "CAST({c} AS VARCHAR)"),  # exact digits; SQLite has no decimal type
    (r"VARCHAR", "TEXT", None),
    (r"BLOB", "BLOB", None),
    (
        r"TIMESTAMP WITH TIME ZONE",
        "TIMESTAMPTZ",
        f"strftime(timezone('UTC', {{c}}), '{_TIMESTAMP_TEXT}') || '+00:00'",
    ),
    (r"TIMESTAMP(_S|_MS|_NS)?", "TIMESTAMP", f"strftime(CAST({{c}} AS TIMESTAMP), '{_TIMESTAMP_TEXT}')"),
    (r"DATE", "DATE", "strftime({c}, '%Y-%m-%d')"),
    (r".*\[\]|STRUCT.*|MAP.*|.*\[\d+\]|UNION.*", "JSON", "CAST(to_json({c}) AS VARCHAR)"),
    (r".*", "TEXT", "CAST({c} AS VARCHAR)"),  # TIME, INTERVAL, ENUM, BIT, ...
)


#: (old, new) declared types SQLite's evolve step widens (``on_schema_change: sync_all_columns``): the
#: values keep their meaning under the new type's affinity. Other retypes refuse an append; a full
#: refresh rebuilds the table.
SQLITE_WIDENINGS = frozenset({("BOOLEAN", "INTEGER"), ("BOOLEAN", "REAL"), ("INTEGER", "REAL")})
REBUILD_PREFIX = "__accel_evolve_"


def sqlite_type(duckdb_type: str) -> tuple[str, str | None]:
    """The SQLite declared type and the value conversion of a DuckDB column type."""
    for pattern, declared, expression in SQLITE_TYPES:
        if re.fullmatch(pattern, duckdb_type):
            return declared, expression
    raise AssertionError("the last SQLITE_TYPES row matches every type")


def _parse_instant(declared: str, value: Any) -> Any:
    """A watermark read back from SQLite's text, as the value DuckDB would have returned."""
    if not isinstance(value, str):
        return value
    if declared in ("TIMESTAMPTZ", "TIMESTAMP"):
        return dt.datetime.fromisoformat(value)
    if declared == "DATE":
        return dt.date.fromisoformat(value)
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))  # an ISO8601 text column


def _stored_literal(declared: str, time_column: TimeColumn, value: Any) -> str:
    """A literal comparable with the stored column (retention's cutoff)."""
    if time_column.is_numeric:
        return repr(float(value)) if isinstance(value, float) else str(value)
    if isinstance(value, dt.datetime):
        if declared == "DATE":
            text = value.date().isoformat()
        elif declared == "TIMESTAMP":  # stored without an offset: compare like with like (UTC)
            naive = value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo is not None else value
            text = naive.strftime(_TIMESTAMP_TEXT)
        elif value.tzinfo is not None or declared == "TIMESTAMPTZ":
            utc = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
            text = utc.strftime(_TIMESTAMP_TEXT) + "+00:00"
        else:
            text = value.strftime(_TIMESTAMP_TEXT)
        return "'" + text + "'"
    return "'" + str(value).replace("'", "''") + "'"


class SQLiteLiveSql:
    """:class:`~.engine.LiveSql` on a SQLite connection."""

    capabilities: EngineCapabilities = SQLITE

    def __init__(self, con: sqlite3.Connection) -> None:
        self.con = con

    def count(self, sql: str) -> int:
        return int(self.con.execute(sql).rowcount)

    def describe(self, table: str) -> list[tuple[str, str]]:
        schema, _, name = table.rpartition(".")
        pragma = f"{schema}.table_info({name})" if schema else f"table_info({name})"
        return [(str(row[1]), str(row[2])) for row in self.con.execute(f"PRAGMA {pragma}")]

    def execute(self, sql: str) -> None:
        self.con.execute(sql)

    def widens(self, old_type: str, new_type: str) -> bool:
        return (old_type.upper(), new_type.upper()) in SQLITE_WIDENINGS

    def rebuild(self, table: str, name: str, columns: list[tuple[str, str, str]]) -> None:
        # No ALTER COLUMN ... TYPE, and DROP COLUMN refuses indexed columns: a new table takes the
        # rows, the old one goes (with its indexes, which the refresh's finish step recreates), and the
        # new one takes its name, all inside the caller's transaction.
        schema = "" if table.startswith('"') else table.split(".", 1)[0] + "."
        rebuilt = f"{schema}{quote_identifier(REBUILD_PREFIX + name)}"
        definition = ", ".join(f"{quote_identifier(column)} {type_}" for column, type_, _ in columns)
        select = ", ".join(expression for _, _, expression in columns)
        self.con.execute(f"DROP TABLE IF EXISTS {rebuilt}")
        self.con.execute(f"CREATE TABLE {rebuilt} ({definition})")
        self.con.execute(f"INSERT INTO {rebuilt} SELECT {select} FROM {table}")
        self.con.execute(f"DROP TABLE {table}")
        self.con.execute(f"ALTER TABLE {rebuilt} RENAME TO {quote_identifier(name)}")

    def index_names(self, table: str, name: str) -> list[str]:
        schema, _, quoted = table.rpartition(".")
        pragma = f"{schema}.index_list({quoted})" if schema else f"index_list({quoted})"
        return [str(row[1]) for row in self.con.execute(f"PRAGMA {pragma}")]

    def is_unique_violation(self, err: BaseException) -> bool:
        return isinstance(err, sqlite3.IntegrityError) and "UNIQUE" in str(err)


class SQLiteAcceleratorHook(ArrowEngineHook):
    """Accelerates spicepod datasets into SQLite files (``engine: sqlite``)."""

    capabilities: ClassVar[EngineCapabilities] = SQLITE

    # -- where and how ------------------------------------------------------------------------

    def dataset_path(self, dataset: Dataset) -> Path:
        """``params.sqlite_file`` (relative to the data directory), else ``<name>.sqlite``."""
        acceleration = dataset.acceleration
        configured = acceleration.params.get("sqlite_file") if acceleration else None
        if configured:
            path = Path(os.path.expanduser(str(configured)))
            return path if path.is_absolute() else self.data_dir / path
        return self.data_dir / f"{_UNSAFE_FILE_CHARS.sub('_', dataset.name.lower())}.sqlite"

    def location(self, dataset: Dataset) -> str:
        return str(self.dataset_path(dataset))

    @staticmethod
    def busy_timeout_ms(dataset: Dataset) -> int:
        acceleration = dataset.acceleration
        value = acceleration.params.get("busy_timeout") if acceleration else None
        if value is None:
            return DEFAULT_BUSY_TIMEOUT_MS
        return int(value.total_seconds() * 1000) if isinstance(value, dt.timedelta) else int(value)

    def connect(self, path: Path, dataset: Dataset) -> sqlite3.Connection:
        """A connection in explicit-transaction mode with Spice's busy timeout."""
        con = sqlite3.connect(path, timeout=self.busy_timeout_ms(dataset) / 1000, isolation_level=None)
        con.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms(dataset)}")
        return con

    def writer_lock(self, dataset: Dataset) -> contextlib.AbstractContextManager[Any]:
        return writer_lock(self.dataset_path(dataset), self.lock_timeout, dataset=dataset.name)

    def recover(self, dataset: Dataset) -> None:
        remove_staging_leftovers(self.dataset_path(dataset))

    # -- the live file ------------------------------------------------------------------------

    def inspect_live(self, dataset: Dataset, *, want_watermark: bool, want_rows: bool = True) -> LiveState:
        path = self.dataset_path(dataset)
        state = LiveState()
        if not path.exists():
            return state
        state.exists = True
        with contextlib.closing(self.connect(path, dataset)) as con:
            names = [
                str(row[0])
                for row in con.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")
                if not str(row[0]).startswith("sqlite_")
            ]
            wanted = dataset.name.casefold()
            state.other_tables = [n for n in names if n.casefold() != wanted]
            state.table_exists = len(state.other_tables) < len(names)
            if not state.table_exists:
                return state
            table = quote_identifier(dataset.name)
            state.columns = SQLiteLiveSql(con).describe(table)
            if not want_rows:
                return state
            state.row_count = int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
            if want_watermark and dataset.time_column and state.row_count:
                state.watermark = self._read_watermark(con, dataset, state.columns)
        return state

    @staticmethod
    def _read_watermark(con: sqlite3.Connection, dataset: Dataset, columns: list[tuple[str, str]]) -> Any:
        assert dataset.time_column is not None
        declared = {name.casefold(): type_ for name, type_ in columns}.get(dataset.time_column.casefold())
        if declared is None:
            raise TerminalRefreshError(
                f"Dataset {dataset.name}: time_column {dataset.time_column!r} is not a column "
                f"of the accelerated table; run a full refresh or fix time_column.",
                dataset=dataset.name,
            )
        column, table = quote_identifier(dataset.time_column), quote_identifier(dataset.name)
        if dataset.time_format == TimeFormat.ISO8601:
            row = con.execute(f"SELECT {column} FROM {table} ORDER BY julianday({column}) DESC LIMIT 1")
        else:
            row = con.execute(f"SELECT max({column}) FROM {table}")
        return _parse_instant(declared, row.fetchone()[0])

    @staticmethod
    def _stats(con: sqlite3.Connection, dataset: Dataset, schema: str = "main") -> tuple[int, str | None]:
        table = f"{schema}.{quote_identifier(dataset.name)}"
        total = int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
        watermark = None
        if dataset.time_column and total:
            columns = SQLiteLiveSql(con).describe(table)
            with contextlib.suppress(sqlite3.Error, TerminalRefreshError, ValueError):
                value = SQLiteAcceleratorHook._read_watermark_in(con, dataset, columns, table)
                watermark = None if value is None else str(value)
        return total, watermark

    @staticmethod
    def _read_watermark_in(
        con: sqlite3.Connection, dataset: Dataset, columns: list[tuple[str, str]], table: str
    ) -> Any:
        assert dataset.time_column is not None
        declared = {name.casefold(): type_ for name, type_ in columns}[dataset.time_column.casefold()]
        column = quote_identifier(dataset.time_column)
        return _parse_instant(declared, con.execute(f"SELECT max({column}) FROM {table}").fetchone()[0])

    # -- staging ------------------------------------------------------------------------------

    @staticmethod
    def _write_staging(staging: Path, dataset: Dataset, stream: ArrowStream, *, finish: bool) -> list[str]:
        """Create the staged table in a new SQLite file and fill it in one transaction; its DDL columns.

        With ``finish``, the table that goes live as this file: ``retention_sql`` and ``indexes`` too.
        """
        columns = [f"{quote_identifier(name)} {sqlite_type(type_)[0]}" for name, type_ in stream.duckdb_types]
        table = quote_identifier(dataset.name)
        placeholders = ", ".join("?" for _ in columns)
        con = sqlite3.connect(staging, isolation_level=None)
        try:
            con.execute("PRAGMA journal_mode = OFF")  # a staging file has no reader to protect
            con.execute("PRAGMA synchronous = OFF")  # synced once, whole, before it goes live
            con.execute("BEGIN")
            con.execute(f"CREATE TABLE {table} ({', '.join(columns)})")
            insert = f"INSERT INTO {table} VALUES ({placeholders})"
            for batch in stream.batches():
                con.executemany(insert, zip(*(column.to_pylist() for column in batch.columns), strict=True))
            if finish:
                evict_and_index(SQLiteLiveSql(con), dataset, table, [name for name, _ in stream.duckdb_types])
            con.execute("COMMIT")
        finally:
            con.close()
        fsync_path(staging)
        return columns

    def stream_sql(self, select_sql: str, duckdb_types: list[tuple[str, str]]) -> str:
        """The fetch query with each column converted to its stored SQLite form (:data:`SQLITE_TYPES`)."""
        parts = []
        for name, type_ in duckdb_types:
            column = quote_identifier(name)
            expression = sqlite_type(type_)[1]
            parts.append(f"{expression.format(c=column)} AS {column}" if expression else column)
        return f"SELECT {', '.join(parts)} FROM ({select_sql}) AS __staged"

    # -- commits ------------------------------------------------------------------------------

    def replace(self, dataset: Dataset, stream: ArrowStream, live: LiveState) -> Written:
        path = self.dataset_path(dataset)
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = staging_file(path)
        try:
            columns = self._write_staging(staging, dataset, stream, finish=live.exclusive)
            if live.exclusive:
                with contextlib.closing(sqlite3.connect(staging)) as con:
                    expected = self._stats(con, dataset)
                atomic_replace(staging, path)
                return Written(stream.rows, *expected)
            return self._in_place(dataset, staging, columns, plan=None)
        finally:
            remove_file(staging)

    def merge(self, dataset: Dataset, stream: ArrowStream, plan: FetchPlan) -> Written:
        path = self.dataset_path(dataset)
        staging = staging_file(path)
        try:
            columns = self._write_staging(staging, dataset, stream, finish=False)
            return self._in_place(dataset, staging, columns, plan=plan)
        finally:
            remove_file(staging)

    def _in_place(
        self, dataset: Dataset, staging: Path, columns: list[str], plan: FetchPlan | None
    ) -> Written:
        """Bring the staged table into the live file in one transaction (replace it, or merge)."""
        path = self.dataset_path(dataset)
        table = quote_identifier(dataset.name)
        staged = f"{STAGED_ALIAS}.{table}"
        with contextlib.closing(self.connect(path, dataset)) as con:
            con.execute(f"ATTACH DATABASE ? AS {STAGED_ALIAS}", (str(staging),))
            try:
                con.execute("BEGIN IMMEDIATE")
                sql = SQLiteLiveSql(con)
                if plan is None:
                    con.execute(f"DROP TABLE IF EXISTS main.{table}")
                    con.execute(f"CREATE TABLE main.{table} ({', '.join(columns)})")
                    written = con.execute(f"INSERT INTO main.{table} SELECT * FROM {staged}").rowcount
                else:
                    names = tuple(name for name, _ in sql.describe(staged))
                    target = AppendTarget(dataset, f"main.{table}", staged, names, plan.dedup_cutoff)
                    written = plan.strategy.merge(sql, plan, target)
                live_columns = [n for n, _ in sql.describe(f"main.{table}")] if indexes.specs(dataset) else []
                # Unqualified: CREATE INDEX ... ON takes no schema (the name resolves to main first).
                evict_and_index(sql, dataset, table, live_columns)  # in this transaction
                con.execute("COMMIT")
            except BaseException:
                if con.in_transaction:
                    con.execute("ROLLBACK")
                raise
            finally:
                with contextlib.suppress(sqlite3.Error):
                    con.execute(f"DETACH DATABASE {STAGED_ALIAS}")
            return Written(int(written), *self._stats(con, dataset))

    # -- retention ----------------------------------------------------------------------------

    def delete_where(
        self, dataset: Dataset, period: tuple[TimeColumn, Any] | None, condition: str | None
    ) -> tuple[int, int]:
        path = self.dataset_path(dataset)
        live = self.inspect_live(dataset, want_watermark=False)
        if not live.table_exists:
            return 0, 0
        table = quote_identifier(dataset.name)
        predicates = [] if condition is None else [condition]
        if period is not None:
            time_column, cutoff = period
            declared = {n.casefold(): t for n, t in live.columns}.get(time_column.name.casefold(), "")
            column = quote_identifier(time_column.name)
            literal = _stored_literal(declared, time_column, cutoff)
            if time_column.time_format == TimeFormat.ISO8601:
                predicates.insert(0, f"julianday({column}) < julianday({literal})")
            else:
                predicates.insert(0, f"{column} < {literal}")
        where = " OR ".join(f"({p})" for p in predicates)
        with contextlib.closing(self.connect(path, dataset)) as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                deleted = con.execute(f"DELETE FROM {table} WHERE {where}").rowcount
                con.execute("COMMIT")
            except BaseException:
                if con.in_transaction:
                    con.execute("ROLLBACK")
                raise
            total = int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
        return int(deleted), total

    # -- the source's columns at the last refresh: a record file next to the live one, as DuckDB's --

    def recorded_source(self, dataset: Dataset) -> list[tuple[str, str]] | None:
        return schema_change.recorded_source(self.dataset_path(dataset), dataset)

    def record_source(self, dataset: Dataset, columns: list[tuple[str, str]]) -> None:
        schema_change.record_source(self.dataset_path(dataset), dataset, columns)

    def preview(self, dataset: Dataset, limit: int) -> tuple[list[tuple[str, str]], int | None, list[Any]]:
        live = self.inspect_live(dataset, want_watermark=False)
        if not live.table_exists:
            return [], None, []
        with contextlib.closing(self.connect(self.dataset_path(dataset), dataset)) as con:
            rows = con.execute(
                f"SELECT * FROM {quote_identifier(dataset.name)} LIMIT {int(limit)}"
            ).fetchall()
        return live.columns, live.row_count, rows

    def naming(self, dataset: Dataset) -> tuple[str, str]:
        return f"sqlite://{self.dataset_path(dataset).resolve()}", f"main.{dataset.name}"

    # -- errors -------------------------------------------------------------------------------

    def classify(self, err: Exception, dataset: str, doing: str) -> RefreshError | None:
        if not isinstance(err, sqlite3.Error | OSError):
            return None
        message = f"Dataset {dataset}: {doing} failed: {err}"
        if isinstance(err, sqlite3.OperationalError) and "locked" in str(err):
            return SourceLockedError(message + " (raise params.busy_timeout to wait longer)", dataset=dataset)
        if isinstance(err, OSError | sqlite3.OperationalError):
            return TransientRefreshError(message, dataset=dataset)
        return TerminalRefreshError(message, dataset=dataset)


def iter_rows(path: Path, dataset: Dataset) -> Iterator[tuple[Any, ...]]:
    """Every row of a dataset's SQLite table (tests and tools)."""
    with contextlib.closing(sqlite3.connect(path)) as con:
        yield from con.execute(f"SELECT * FROM {quote_identifier(dataset.name)}")
