"""Helpers of the source tests: connection params of the test servers, and consuming a SourceScan
the way the accelerator does."""

from __future__ import annotations

from typing import Any

import duckdb
from servers import (
    MYSQL_HOST,
    MYSQL_PASSWORD,
    MYSQL_PORT,
    MYSQL_USER,
    PG_HOST,
    PG_PORT,
    PG_USER,
)

from airflow_provider_accel.sources.base import SourceScan
from airflow_provider_accel.spicepod.model import Acceleration, Dataset

PG_DB = "test"
MYSQL_DB = "test"


def pg_params() -> dict[str, Any]:
    return {
        "pg_host": PG_HOST,
        "pg_port": PG_PORT,
        "pg_user": PG_USER,
        "pg_db": PG_DB,
        "pg_sslmode": "disable",
    }


def mysql_params() -> dict[str, Any]:
    return {
        "mysql_host": MYSQL_HOST,
        "mysql_tcp_port": MYSQL_PORT,
        "mysql_user": MYSQL_USER,
        "mysql_pass": MYSQL_PASSWORD,
    }


def dataset(from_: str, params: dict[str, Any], name: str = "ds", **kwargs: Any) -> Dataset:
    return Dataset(from_=from_, name=name, params=params, **kwargs)


def accelerated(from_: str, params: dict[str, Any], name: str = "ds", **kwargs: Any) -> Dataset:
    """A dataset with an acceleration block (for refreshes through the accelerator)."""
    accel = Acceleration(**kwargs.pop("acceleration", {}))
    return Dataset(from_=from_, name=name, params=params, acceleration=accel, **kwargs)


def load(
    scan: SourceScan, con: duckdb.DuckDBPyConnection, where: str | None = None, table: str = "t"
) -> None:
    """CREATE TABLE from the scan exactly as the accelerator does (re-applying the filter)."""
    if scan.reader is not None:
        con.register("src", scan.reader)
        source = "src"
    else:
        source = f"({scan.duckdb_sql})"
    sql = f"CREATE TABLE {table} AS SELECT * FROM {source} AS s"
    if where:
        sql += f" WHERE {where}"
    con.execute(sql).fetchall()


def mysql_exec(conn: Any, *statements: str) -> None:
    with conn.cursor() as cur:
        for statement in statements:
            cur.execute(statement)
