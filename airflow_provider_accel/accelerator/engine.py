"""What an accelerator engine supplies, and what it can do, declared as data.

The refresh semantics (modes in :mod:`.strategies`, ``on_conflict`` in :mod:`.conflict`, write paths
in :mod:`.committers`) are written once. An engine supplies only what differs:

* how it **stages** a refresh (a staging file for DuckDB; a staging table for a server engine),
* how it **commits** it (the committers its capabilities allow),
* how it **reads the live state** (tables, columns, row count, watermark),
* its **capabilities**, as an :class:`EngineCapabilities` record.

Today DuckDB is the only engine (:data:`DUCKDB`, implemented by
:class:`~.hook.DuckDBAcceleratorHook`); SQLite and PostgreSQL engines add a record and those
operations.
"""

from __future__ import annotations

from dataclasses import dataclass


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


DUCKDB = EngineCapabilities(
    name="duckdb",
    atomic_file_swap=True,
    transactional_ddl=True,
    indexes=True,
    alter_columns=True,
)
