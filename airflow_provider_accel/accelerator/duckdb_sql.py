"""Small helpers for running SQL on a DuckDB connection, shared by the accelerator's modules."""

from __future__ import annotations

from typing import Any

import duckdb

from airflow_provider_accel.accelerator.engine import DUCKDB, EngineCapabilities
from airflow_provider_accel.sql.refresh_sql import quote_identifier

#: Alias under which the staging file is attached to the live file's connection.
STAGING_ALIAS = "__accel_staging"
#: Alias under which the live file is attached to a compaction's connection.
LIVE_ALIAS = "__accel_live"


def run(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    """Execute a statement and read its result to the end.

    DuckDB 2 keeps a result open until it is read to the end and refuses other work on the
    connection meanwhile, so even a DDL statement's (empty) result is drained here.
    """
    return con.execute(sql, params).fetchall()


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> Any:
    """The first column of the first row of a query (``None`` when it returns no row)."""
    rows = run(con, sql, params)
    return rows[0][0] if rows else None


def describe(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    """``(column, DuckDB type)`` of a (quoted, possibly qualified) table, in order."""
    return [(row[0], row[1]) for row in run(con, f"DESCRIBE {table}")]


class DuckDBLiveSql:
    """:class:`~.engine.LiveSql` on a DuckDB connection (DuckDB returns a DML's count as a row)."""

    capabilities: EngineCapabilities = DUCKDB

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def count(self, sql: str) -> int:
        return int(scalar(self.con, sql) or 0)

    def describe(self, table: str) -> list[tuple[str, str]]:
        return describe(self.con, table)

    def execute(self, sql: str) -> None:
        run(self.con, sql)

    def widens(self, old_type: str, new_type: str) -> bool:
        try:
            return bool(scalar(self.con, f"SELECT can_cast_implicitly(NULL::{old_type}, NULL::{new_type})"))
        except duckdb.Error:
            return False

    def rebuild(self, table: str, name: str, columns: list[tuple[str, str, str]]) -> None:
        select = ", ".join(f"{expression} AS {quote_identifier(column)}" for column, _, expression in columns)
        run(self.con, f"CREATE OR REPLACE TABLE {table} AS SELECT {select} FROM {table}")

    def index_names(self, table: str, name: str) -> list[str]:
        rows = run(
            self.con,
            "SELECT index_name FROM duckdb_indexes() WHERE database_name = current_database() "
            "AND lower(table_name) = lower(?)",
            [name],
        )
        return [str(index) for (index,) in rows]

    def is_unique_violation(self, err: BaseException) -> bool:
        return isinstance(err, duckdb.ConstraintException)
