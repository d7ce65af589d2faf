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
    #: ``ALTER TABLE ... ADD / DROP COLUMN`` and ``ALTER COLUMN ... TYPE``. Without it (SQLite: ADD
    #: COLUMN only) ``on_schema_change`` rebuilds the table inside the append's transaction instead.
    alter_columns: bool
    #: The null-safe equality operator of the engine's SQL (``IS NOT DISTINCT FROM``, or ``IS``).
    null_safe_equal: str = "IS NOT DISTINCT FROM"
    #: The live table's time column compares with :class:`~.timefilter.TimeColumn`'s typed literals
    #: (``TIMESTAMPTZ '...'``); SQLite stores instants as ISO-8601 text and has no such literals.
    typed_time_literals: bool = True
    #: Where the data lives, for status and UI: ``"file"`` (a path) or ``"server"``
    #: (``host:port/db.schema.table``).
    location_kind: str = "file"
    #: A column that an index covers can be dropped or retyped (DuckDB refuses, even after a DROP
    #: INDEX in the same transaction: its evolve step rebuilds such a table instead).
    alter_indexed_columns: bool = True
    #: Table names differ by case (PostgreSQL's quoted names), so derived names keep the case.
    case_sensitive_names: bool = False


DUCKDB = EngineCapabilities(
    name="duckdb",
    atomic_file_swap=True,
    transactional_ddl=True,
    indexes=True,
    alter_columns=True,
    alter_indexed_columns=False,
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
    case_sensitive_names=True,
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

    def execute(self, sql: str) -> None:
        """Run a statement (DDL) whose result is not needed."""
        ...

    def widens(self, old_type: str, new_type: str) -> bool:
        """Whether the engine casts ``old_type`` to ``new_type`` implicitly (a lossless widening)."""
        ...

    def rebuild(self, table: str, name: str, columns: list[tuple[str, str, str]]) -> None:
        """Replace ``table`` (quoted, possibly qualified; bare name ``name``) by a table of ``columns``.

        ``columns`` are ``(name, engine type, expression over the old table)``; runs in the caller's
        transaction, so the table is fully rebuilt or untouched.
        """
        ...

    def index_names(self, table: str, name: str) -> list[str]:
        """Names of the indexes on ``table`` (quoted, possibly qualified; bare name ``name``)."""
        ...

    def is_unique_violation(self, err: BaseException) -> bool:
        """Whether ``err`` is the engine's unique-constraint (unique index) violation."""
        ...
