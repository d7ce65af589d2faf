"""``on_schema_change``: what a refresh does when the source's columns no longer match the live table.

One decision for every path that brings new columns to a live table: a full refresh (the table is
rebuilt), an append (the live table is altered in the same transaction as the insert), and a
snapshot replica (a downloaded file replaces the local one). Spice's values:

* ``block`` (default) and ``fail``: any difference fails the refresh, naming the columns that differ
  and the setting that would allow it; the live data is kept.
* ``append_new_columns``: columns added to the source are added (existing rows get NULL); a column
  removed or retyped fails.
* ``sync_all_columns``: columns are added and dropped, and types widened (a type the old one casts to
  implicitly, such as INTEGER to BIGINT); a narrowed type fails an append (a full refresh rebuilds).
* ``drop_and_recreate``: a full refresh rebuilds the table with the new columns; an append refuses,
  since it cannot recreate the table from an increment.

The schema change and the data of that refresh go live together: a full refresh's new table is in its
staging file or transaction; an append's ``ALTER TABLE`` runs inside the transaction of its insert.
Every engine (DuckDB, SQLite, PostgreSQL) takes the same decision; its :class:`~.engine.LiveSql`
runs it (:func:`evolve`): a widening is what the engine casts implicitly, and an engine without
``alter_columns`` (SQLite) rebuilds the table in the append's transaction to drop or retype a column.
Columns are compared by name, case-insensitively (as DuckDB resolves them), and by engine type.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from airflow_provider_accel.accelerator.layout import replace_json
from airflow_provider_accel.exceptions import TerminalRefreshError
from airflow_provider_accel.spicepod.model import OnSchemaChange
from airflow_provider_accel.sql.refresh_sql import quote_identifier

if TYPE_CHECKING:
    import pyarrow as pa

    from airflow_provider_accel.accelerator.engine import LiveSql
    from airflow_provider_accel.spicepod.model import Dataset

log = logging.getLogger(__name__)

Columns = Sequence[tuple[str, str]]  # (name, DuckDB type), in table order


@dataclass(frozen=True)
class SchemaDiff:
    """How the source's columns differ from the live table's."""

    added: tuple[tuple[str, str], ...] = ()  # in the source only
    removed: tuple[tuple[str, str], ...] = ()  # in the live table only
    changed: tuple[tuple[str, str, str], ...] = ()  # (name, live type, source type)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def describe(self) -> str:
        parts = []
        if self.added:
            parts.append("added " + ", ".join(f"{n} {t}" for n, t in self.added))
        if self.removed:
            parts.append("removed " + ", ".join(f"{n} {t}" for n, t in self.removed))
        if self.changed:
            parts.append("retyped " + ", ".join(f"{n} {old} -> {new}" for n, old, new in self.changed))
        return "; ".join(parts)


def compare(live: Columns, source: Columns) -> SchemaDiff:
    """The columns added, removed and retyped between the live table and the source (by name)."""
    live_types = {name.casefold(): (name, type_) for name, type_ in live}
    source_types = {name.casefold(): (name, type_) for name, type_ in source}
    added = tuple((n, t) for key, (n, t) in source_types.items() if key not in live_types)
    removed = tuple((n, t) for key, (n, t) in live_types.items() if key not in source_types)
    changed = tuple(
        (live_types[key][0], live_types[key][1], t)
        for key, (_, t) in source_types.items()
        if key in live_types and live_types[key][1] != t
    )
    return SchemaDiff(added, removed, changed)


def _fail(dataset: Dataset, diff: SchemaDiff, *, append: bool, advice: str) -> TerminalRefreshError:
    kind = "an append" if append else "a full refresh"
    return TerminalRefreshError(
        f"Dataset {dataset.name}: the source's columns differ from the accelerated table's "
        f"({diff.describe()}); "
        f"on_schema_change is {dataset.on_schema_change.value}, so {kind} does not change them. {advice} "
        "The accelerated data is kept as it was.",
        dataset=dataset.name,
    )


def rebuild_refusal(dataset: Dataset, diff: SchemaDiff) -> str | None:
    """Why a rebuilt table (full refresh, snapshot) may not take the new columns; ``None``: it may."""
    policy = dataset.on_schema_change
    if not diff or policy in (OnSchemaChange.SYNC_ALL_COLUMNS, OnSchemaChange.DROP_AND_RECREATE):
        return None
    if policy is OnSchemaChange.APPEND_NEW_COLUMNS and not diff.removed and not diff.changed:
        return None
    if policy is OnSchemaChange.APPEND_NEW_COLUMNS:
        return (
            "Set the dataset's on_schema_change to sync_all_columns (or drop_and_recreate) to accept "
            "removed or retyped columns."
        )
    return (
        "Set the dataset's on_schema_change to append_new_columns (added columns), sync_all_columns or "
        "drop_and_recreate (any change) to follow the source."
    )


def check_rebuild(dataset: Dataset, live: Columns, source: Columns) -> None:
    """Refuse a full refresh whose new table's columns ``on_schema_change`` does not allow."""
    diff = compare(live, source)
    advice = rebuild_refusal(dataset, diff)
    if advice is not None:
        raise _fail(dataset, diff, append=False, advice=advice)


def evolve(sql: LiveSql, dataset: Dataset, table: str, live: Columns, source: Columns) -> bool:
    """Alter the live ``table`` (in the caller's transaction) so an append can insert ``source``'s columns.

    The engine's evolve step: the policy is decided here, once; the engine's
    :class:`~.engine.LiveSql` runs the change. Engines with ``alter_columns`` alter the table in
    place; the others (SQLite: ADD COLUMN only) add columns in place and rebuild the table, inside
    the same transaction, to drop or retype one. Returns whether the table was altered. Raises,
    before any change, when ``on_schema_change`` does not allow the difference.
    """
    diff = compare(live, source)
    if not diff:
        return False
    policy = dataset.on_schema_change
    if policy in (OnSchemaChange.BLOCK, OnSchemaChange.FAIL):
        raise _fail(
            dataset,
            diff,
            append=True,
            advice="Set on_schema_change to append_new_columns or sync_all_columns to evolve the table, "
            "or run a full refresh with on_schema_change drop_and_recreate.",
        )
    if policy is OnSchemaChange.DROP_AND_RECREATE:
        raise _fail(
            dataset,
            diff,
            append=True,
            advice="drop_and_recreate rebuilds the table on a full refresh only: run a full refresh "
            "(refresh_mode full, or an on-demand refresh with refresh_mode full).",
        )
    if policy is OnSchemaChange.APPEND_NEW_COLUMNS and (diff.removed or diff.changed):
        raise _fail(
            dataset,
            diff,
            append=True,
            advice="append_new_columns only adds columns; set on_schema_change to sync_all_columns to drop "
            "and widen columns too, or run a full refresh with drop_and_recreate.",
        )
    narrowed = [(n, old, new) for n, old, new in diff.changed if not sql.widens(old, new)]
    if narrowed:
        raise _fail(
            dataset,
            SchemaDiff(changed=tuple(narrowed)),
            append=True,
            advice="sync_all_columns widens types only (the old type must cast to the new one without loss); "
            "run a full refresh with on_schema_change sync_all_columns or drop_and_recreate to rebuild it.",
        )
    from airflow_provider_accel.accelerator import indexes

    capabilities = sql.capabilities
    reshapes = bool(diff.removed or diff.changed)
    if reshapes and (
        not capabilities.alter_columns
        or (not capabilities.alter_indexed_columns and indexes.own_indexes(sql, dataset, table))
    ):
        # SQLite cannot drop-and-retype in place; DuckDB refuses to drop or retype an indexed column:
        # the table is rebuilt with its new columns in this transaction, and the refresh's finish step
        # recreates the indexes in this same transaction.
        sql.rebuild(table, dataset.name, _rebuilt_columns(live, diff))
        return True
    for name, type_ in diff.added:
        sql.execute(f"ALTER TABLE {table} ADD COLUMN {quote_identifier(name)} {type_}")
    for name, _ in diff.removed:
        sql.execute(f"ALTER TABLE {table} DROP COLUMN {quote_identifier(name)}")
    for name, _, new in diff.changed:
        # A widening only (checked above), so the engine's implicit cast converts the rows.
        sql.execute(f"ALTER TABLE {table} ALTER COLUMN {quote_identifier(name)} TYPE {new}")
    return True


def _rebuilt_columns(live: Columns, diff: SchemaDiff) -> list[tuple[str, str, str]]:
    """The rebuilt table's ``(name, type, expression)``: kept columns cast, added ones NULL."""
    removed = {name.casefold() for name, _ in diff.removed}
    retyped = {name.casefold(): new for name, _, new in diff.changed}
    columns = []
    for name, type_ in live:
        if name.casefold() in removed:
            continue
        column = quote_identifier(name)
        new_type = retyped.get(name.casefold())
        expression = f"CAST({column} AS {new_type})" if new_type else column
        columns.append((name, new_type or type_, expression))
    columns.extend((name, type_, f"CAST(NULL AS {type_})") for name, type_ in diff.added)
    return columns


# -- the source's columns at the last committed refresh (what a full refresh compares against) ------
#
# A full refresh compares the source's columns with those it had at the last refresh, not with the
# live table's: an on-demand refresh_sql with a column list shapes the table for that run only, and
# the next plain run must not read that as a change of the source.

RECORD_SUFFIX = ".source_columns.json"


def _record_file(path: Path) -> Path:
    return path.with_name(path.name + RECORD_SUFFIX)


def _records(path: Path) -> dict[str, list[list[str]]]:
    try:
        data = json.loads(_record_file(path).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def recorded_source(path: Path, dataset: Dataset) -> list[tuple[str, str]] | None:
    """The source's columns at the dataset's last committed refresh into ``path`` (``None``: unknown)."""
    columns = _records(path).get(dataset.name.casefold())
    return None if columns is None else [(str(c[0]), str(c[1])) for c in columns]


def record_source(path: Path, dataset: Dataset, columns: Columns) -> None:
    """After a committed refresh: the source's columns it read."""
    records = _records(path)
    records[dataset.name.casefold()] = [[name, type_] for name, type_ in columns]
    target = _record_file(path)
    try:
        replace_json(target, records)
    except OSError as err:
        # The refresh has committed; a record that cannot be written (a full disk) must not fail it,
        # nor stay stale: without a record the next full refresh makes no comparison.
        target.unlink(missing_ok=True)
        log.warning("Dataset %s: could not record the source's columns in %s (%s)", dataset.name, target, err)


def source_columns(schema: pa.Schema) -> list[tuple[str, str]]:
    """A source's Arrow schema as (name, type) pairs, for :func:`compare`."""
    return [(field.name, str(field.type)) for field in schema]
