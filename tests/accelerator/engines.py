"""One accelerator engine as the contract tests see it: a hook, datasets on it, and its rows read back."""

from __future__ import annotations

import contextlib
import dataclasses
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import servers

from airflow_provider_accel.accelerator.engines import hook_for
from airflow_provider_accel.spicepod.model import Dataset, Engine
from airflow_provider_accel.sql.refresh_sql import quote_identifier

ENGINES = ["duckdb", "sqlite", "postgres"]


def pg_uri(db: str = "postgres") -> str:
    return f"postgresql://{servers.PG_USER}@{servers.PG_HOST}:{servers.PG_PORT}/{db}?sslmode=disable"


@dataclass
class EngineUnderTest:
    name: str
    data_dir: Path
    pg_schema: str | None = None

    def on(self, dataset: Dataset) -> Dataset:
        """``dataset`` accelerated into this engine."""
        assert dataset.acceleration is not None
        params = dict(dataset.acceleration.params)
        if self.name == "postgres":
            params.update(
                pg_host=servers.PG_HOST,
                pg_port=servers.PG_PORT,
                pg_user=servers.PG_USER,
                pg_sslmode="disable",
                pg_schema=self.pg_schema,
            )
        acceleration = dataclasses.replace(dataset.acceleration, engine=Engine(self.name), params=params)
        return dataclasses.replace(dataset, acceleration=acceleration)

    def hook(self, dataset: Dataset) -> Any:
        return hook_for(dataset, data_dir=self.data_dir, lock_timeout=5)

    def rows(self, dataset: Dataset, columns: str = "*") -> list[tuple[Any, ...]]:
        """The accelerated table's rows, sorted (in the engine's own value types)."""
        return sorted(self.query(dataset, f"SELECT {columns} FROM {{table}}"), key=_sort_key)

    def query(self, dataset: Dataset, sql: str) -> list[tuple[Any, ...]]:
        """``sql`` with ``{table}`` standing for the dataset's (quoted) table."""
        hook = self.hook(dataset)
        table = quote_identifier(dataset.name)
        if self.name == "duckdb":
            with contextlib.closing(duckdb.connect(str(hook.dataset_path(dataset)), read_only=True)) as con:
                return con.execute(sql.format(table=table)).fetchall()
        if self.name == "sqlite":
            with contextlib.closing(sqlite3.connect(hook.dataset_path(dataset))) as con:
                return con.execute(sql.format(table=table)).fetchall()
        import adbc_driver_postgresql.dbapi as pg

        with pg.connect(pg_uri()) as con, con.cursor() as cur:
            cur.execute(sql.format(table=f"{quote_identifier(self.pg_schema or '')}.{table}"))
            return [tuple(row) for row in cur.fetchall()]

    def columns(self, dataset: Dataset) -> dict[str, str]:
        """The accelerated table's columns and their engine types."""
        table = quote_identifier(dataset.name)
        if self.name == "duckdb":
            return {str(r[0]): str(r[1]) for r in self.query(dataset, "DESCRIBE {table}")}
        if self.name == "sqlite":
            return {str(r[1]): str(r[2]) for r in self.query(dataset, f"PRAGMA table_info({table})")}
        qualified = f"{quote_identifier(self.pg_schema or '')}.{table}".replace("'", "''")
        sql = (
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
            f"WHERE attrelid = '{qualified}'::regclass AND attnum > 0 AND NOT attisdropped"
        )
        return {str(n): str(t) for n, t in self.query(dataset, sql)}

    def indexes(self, dataset: Dataset) -> dict[str, bool]:
        """The accelerated table's index names, each with whether it is unique."""
        table = quote_identifier(dataset.name)
        if self.name == "duckdb":
            sql = f"SELECT index_name, is_unique FROM duckdb_indexes() WHERE table_name = '{dataset.name}'"
            return {str(n): bool(u) for n, u in self.query(dataset, sql)}
        if self.name == "sqlite":
            return {str(r[1]): bool(r[2]) for r in self.query(dataset, f"PRAGMA index_list({table})")}
        qualified = f"{quote_identifier(self.pg_schema or '')}.{table}".replace("'", "''")
        sql = (
            "SELECT c.relname, i.indisunique FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            f"WHERE i.indrelid = '{qualified}'::regclass"
        )
        return {str(n): bool(u) for n, u in self.query(dataset, sql)}

    def staging_leftovers(self, dataset: Dataset) -> list[str]:
        """Staging files or tables a refresh left behind."""
        if self.name == "sqlite":
            files = [p.name for p in self.data_dir.iterdir() if ".staging-" in p.name]
            path = self.hook(dataset).dataset_path(dataset)
            tables: list[str] = []
            if path.exists():  # a table an evolve step's rebuild left in the live file
                with contextlib.closing(sqlite3.connect(path)) as con:
                    names = con.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
                tables = [str(n) for (n,) in names if str(n).startswith("__accel_")]
            return sorted(files + tables)
        if self.name != "postgres":
            return sorted(p.name for p in self.data_dir.iterdir() if ".staging-" in p.name)
        import adbc_driver_postgresql.dbapi as pg

        with pg.connect(pg_uri()) as con, con.cursor() as cur:
            cur.execute(
                f"SELECT table_name FROM information_schema.tables WHERE table_schema = '{self.pg_schema}'"
            )
            return sorted(str(n) for (n,) in cur.fetchall() if str(n).startswith("__accel_"))


def _sort_key(row: tuple[Any, ...]) -> list[tuple[bool, str]]:
    return [(value is None, str(value)) for value in row]


@contextlib.contextmanager
def engine_under_test(name: str, data_dir: Path) -> Iterator[EngineUnderTest]:
    """The engine, with a private PostgreSQL schema dropped afterwards."""
    if name != "postgres":
        yield EngineUnderTest(name, data_dir)
        return
    servers.require_server("PostgreSQL", servers.PG_HOST, servers.PG_PORT)
    import adbc_driver_postgresql.dbapi as pg

    schema = f"accel_t_{uuid.uuid4().hex[:12]}"
    try:
        yield EngineUnderTest(name, data_dir, pg_schema=schema)
    finally:
        with pg.connect(pg_uri()) as con, con.cursor() as cur:
            cur.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            con.commit()
