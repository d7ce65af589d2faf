"""What an accelerator engine supplies, and what it can do, declared as data.

The refresh semantics (modes in :mod:`.strategies`, ``on_conflict`` in :mod:`.conflict`, write paths
in :mod:`.committers`) are written once. An engine supplies only what differs:

* how it **stages** a refresh (a staging file for DuckDB; a staging table for a server engine),
* how it **commits** it (the committers its capabilities allow),
* how it **reads the live state** (tables, columns, row count, watermark),
* its **capabilities**, as an :class:`EngineCapabilities` record.

Three engines: :data:`DUCKDB` (:class:`~.hook.DuckDBAcceleratorHook`), :data:`SQLITE`
(:class:`~.sqlite_engine.SQLiteAcceleratorHook`) and :data:`POSTGRES`
(:class:`~.postgres_engine.PostgresAcceleratorHook`). The shared SQL that reconciles staged rows with
the live table (:mod:`.conflict`, :meth:`.strategies.RefreshStrategy.merge`) runs on any of them
through a :class:`LiveSql`, which knows its engine's capabilities.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class EngineCapabilities:
    """What an engine can do; the shared refresh code asks this instead of the engine's name."""

    name: str
    #: A rebuilt table can go live by renaming a staged file over the live one.
    atomic_file_swap: bool
    #: Several statements (DDL included) commit or roll back together.
    transactional_ddl: bool
    #: ``CREATE INDEX`` / ``CREATE UNIQUE INDEX`` on an accelerated table.
    indexes: bool
    #: ``ALTER TABLE ... ADD / DROP COLUMN`` and ``ALTER COLUMN ... TYPE``.
    alter_columns: bool
    #: The null-safe equality operator of the engine's SQL (``IS NOT DISTINCT FROM``, or ``IS``).
    null_safe_equal: str = "IS NOT DISTINCT FROM"
    #: The live table's time column compares with :class:`~.timefilter.TimeColumn`'s typed literals
    #: (``TIMESTAMPTZ '...'``); SQLite stores instants as ISO-8601 text and has no such literals.
    typed_time_literals: bool = True
    #: Where the data lives, for status and UI: ``"file"`` (a path) or ``"server"``
    #: (``host:port/db.schema.table``).
    location_kind: str = "file"


DUCKDB = EngineCapabilities(
    name="duckdb",
    atomic_file_swap=True,
    transactional_ddl=True,
    indexes=True,
    alter_columns=True,
)

SQLITE = EngineCapabilities(
    name="sqlite",
    atomic_file_swap=True,
    transactional_ddl=True,
    indexes=True,
    alter_columns=False,  # ADD COLUMN only; no ALTER COLUMN ... TYPE
    null_safe_equal="IS",
    typed_time_literals=False,
)

POSTGRES = EngineCapabilities(
    name="postgres",
    atomic_file_swap=False,  # a staging table renamed in one transaction instead
    transactional_ddl=True,
    indexes=True,
    alter_columns=True,
    location_kind="server",
)


class LiveSql(Protocol):
    """SQL on the live data's connection, inside the caller's transaction (any engine)."""

    capabilities: EngineCapabilities

    def count(self, sql: str) -> int:
        """Run a DML statement; the rows it affected."""
        ...

    def describe(self, table: str) -> list[tuple[str, str]]:
        """``(column, engine type)`` of a quoted, possibly qualified table, in order."""
        ...
