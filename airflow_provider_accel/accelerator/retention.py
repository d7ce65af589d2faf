"""Retention: which accelerated rows are evicted, as one SQL condition on the dataset's table.

Spice evicts a row when ``time_column`` is older than ``now - retention_period``, and when the
``retention_sql`` (``DELETE FROM <dataset> WHERE <condition>``, validated like ``refresh_sql``) matches
it. Either can be set alone; with both, a row matching either is evicted.

Two places evict rows:

* the retention DAG (``retention_check_interval``) applies both conditions to the live table;
* a refresh of a dataset with ``retention_check_enabled`` applies the ``retention_sql`` to its new data
  before it goes live, in the same commit, so a refresh never brings back rows the retention policy
  deletes. (The time cutoff is left to the retention DAG: it depends on "now", and rows that age out
  between two checks go at the next check, as in Spice.)
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from airflow_provider_accel.accelerator.duckdb_sql import DuckDBLiveSql
from airflow_provider_accel.accelerator.timefilter import TimeColumn
from airflow_provider_accel.exceptions import RefreshSqlError, TerminalRefreshError
from airflow_provider_accel.sql.refresh_sql import validate_retention_sql

if TYPE_CHECKING:
    import duckdb

    from airflow_provider_accel.accelerator.engine import LiveSql
    from airflow_provider_accel.spicepod.model import Dataset


def sql_condition(dataset: Dataset) -> str | None:
    """The ``retention_sql``'s WHERE condition, rendered by the validator (``None``: none set)."""
    acceleration = dataset.acceleration
    if acceleration is None or not acceleration.retention_sql:
        return None
    try:
        condition = validate_retention_sql(acceleration.retention_sql, dataset.name).where
    except RefreshSqlError as err:
        raise TerminalRefreshError(str(err), dataset=dataset.name) from err
    if not condition:
        raise TerminalRefreshError(
            f"Dataset {dataset.name}: retention_sql needs a WHERE condition (DELETE FROM {dataset.name} "
            "WHERE ...); a DELETE of every row is not a retention policy.",
            dataset=dataset.name,
        )
    return condition


def period_cutoff(dataset: Dataset, now: dt.datetime) -> tuple[TimeColumn, Any] | None:
    """``(time_column, now - retention_period)`` in the column's format (``None``: no period)."""
    acceleration = dataset.acceleration
    if acceleration is None or acceleration.retention_period is None or not dataset.time_column:
        return None
    time_column = TimeColumn(dataset.time_column, dataset.time_format)
    return time_column, time_column.from_instant(now - acceleration.retention_period)


def condition(dataset: Dataset, now: dt.datetime) -> tuple[str, Any]:
    """The condition of the rows the retention check evicts, and the time cutoff (or ``None``)."""
    parts = []
    cutoff = None
    period = period_cutoff(dataset, now)
    if period is not None:
        time_column, cutoff = period
        parts.append(time_column.before(cutoff))
    sql = sql_condition(dataset)
    if sql is not None:
        parts.append(sql)
    if not parts:
        raise TerminalRefreshError(
            f"Dataset {dataset.name}: retention needs time_column and acceleration.retention_period, or "
            "acceleration.retention_sql.",
            dataset=dataset.name,
        )
    return " OR ".join(f"({p})" for p in parts), cutoff


def on_refresh_condition(dataset: Dataset) -> str | None:
    """What a refresh evicts from its new data before it goes live (the ``retention_sql``, if enabled)."""
    acceleration = dataset.acceleration
    if acceleration is None or not acceleration.retention_check_enabled:
        return None
    return sql_condition(dataset)


def delete(con: duckdb.DuckDBPyConnection, table: str, where: str) -> int:
    """Delete the rows of ``table`` (quoted) matching ``where``; returns how many."""
    return evict(DuckDBLiveSql(con), table, where)


def evict(sql: LiveSql, table: str, where: str) -> int:
    """Delete the rows of ``table`` (quoted) matching ``where`` on any engine; returns how many."""
    return sql.count(f"DELETE FROM {table} WHERE {where}")
