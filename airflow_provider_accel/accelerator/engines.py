"""Which hook accelerates a dataset: one per ``acceleration.engine``, chosen here and nowhere else."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from airflow_provider_accel.spicepod.model import Engine

if TYPE_CHECKING:
    from airflow_provider_accel.accelerator.hook import DuckDBAcceleratorHook
    from airflow_provider_accel.accelerator.sql_engine import ArrowEngineHook
    from airflow_provider_accel.spicepod.model import Dataset

    AcceleratorHook = DuckDBAcceleratorHook | ArrowEngineHook


def engine_of(dataset: Dataset) -> Engine:
    """The dataset's engine (``arrow`` is accelerated as a DuckDB file)."""
    engine = dataset.acceleration.engine if dataset.acceleration else Engine.DUCKDB
    return Engine.DUCKDB if engine is Engine.ARROW else engine


def hook_for(
    dataset: Dataset,
    duckdb_conn_id: str | None = None,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    lock_timeout: float | None = None,
) -> AcceleratorHook:
    """The accelerator hook of ``dataset``'s engine."""
    engine = engine_of(dataset)
    if engine is Engine.SQLITE:
        from airflow_provider_accel.accelerator.sqlite_engine import SQLiteAcceleratorHook

        return SQLiteAcceleratorHook(duckdb_conn_id, data_dir=data_dir, lock_timeout=lock_timeout)
    if engine is Engine.POSTGRES:
        from airflow_provider_accel.accelerator.postgres_engine import PostgresAcceleratorHook

        return PostgresAcceleratorHook(duckdb_conn_id, data_dir=data_dir, lock_timeout=lock_timeout)
    from airflow_provider_accel.accelerator.hook import DuckDBAcceleratorHook

    directory = None if data_dir is None else Path(data_dir)
    return DuckDBAcceleratorHook(duckdb_conn_id, data_dir=directory, lock_timeout=lock_timeout)


def arrow_hook_for(
    dataset: Dataset, duckdb_conn_id: str | None = None, *, data_dir: str | os.PathLike[str] | None = None
) -> ArrowEngineHook:
    """The hook of a dataset on SQLite or PostgreSQL (an error for a DuckDB dataset)."""
    from airflow_provider_accel.accelerator.sql_engine import ArrowEngineHook

    hook = hook_for(dataset, duckdb_conn_id, data_dir=data_dir)
    if not isinstance(hook, ArrowEngineHook):
        raise TypeError(f"Dataset {dataset.name} is accelerated by DuckDB, not an Arrow engine")
    return hook


def has_data(hook: AcceleratorHook, dataset: Dataset) -> bool:
    """Whether the dataset's accelerated table exists (its initial load is done)."""
    from airflow_provider_accel.accelerator.hook import DuckDBAcceleratorHook

    if isinstance(hook, DuckDBAcceleratorHook):
        return hook.dataset_path(dataset).exists()
    return hook.inspect_live(dataset, want_watermark=False).table_exists


def location(hook: AcceleratorHook, dataset: Dataset) -> str:
    """Where the dataset's data lives: a file path, or ``host:port/db.schema.table`` (never a password)."""
    from airflow_provider_accel.accelerator.hook import DuckDBAcceleratorHook

    if isinstance(hook, DuckDBAcceleratorHook):
        return str(hook.dataset_path(dataset))
    return hook.location(dataset)


def local_file(hook: AcceleratorHook, dataset: Dataset) -> Path | None:
    """The file on this host that holds the dataset (DuckDB, SQLite); ``None`` for a server engine.

    Staging files are made next to it (``<file>.staging-<pid>-*``), so a cancelled refresh's own
    staging files are found from it. A server engine's staging table lives in the refresh's
    transaction, which the server rolls back when the killed process's connection drops.
    """
    if hook.capabilities.location_kind != "file":
        return None
    return Path(location(hook, dataset))
