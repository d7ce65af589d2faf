"""``acceleration.indexes``: the indexes of an accelerated table (``{column | "(a, b)": enabled | unique}``).

They are created on the new table before it goes live (in the staging file of a full refresh, or in
the transaction that replaces a table in place), so a unique index the new data violates fails that
refresh and the previous data stays live. They live on the table across appends: an append whose
rows violate a unique index fails and is rolled back.

The indexes carry names derived from the dataset, so that the accelerator can drop and recreate its
own indexes (DuckDB refuses to drop or retype an indexed column) without touching anyone else's.
Every engine runs the same statements through its :class:`~.engine.LiveSql`: the DuckDB and SQLite
staged tables live in their own staging files and take the final names; a PostgreSQL staging table
shares the schema with the live one, so its indexes are built under staging names and renamed in the
swap's transaction (:func:`rename_staged`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_provider_accel.exceptions import TerminalRefreshError
from airflow_provider_accel.spicepod.model import IndexKind
from airflow_provider_accel.spicepod.parsers import column_reference
from airflow_provider_accel.sql.refresh_sql import quote_identifier

if TYPE_CHECKING:
    from airflow_provider_accel.accelerator.engine import LiveSql
    from airflow_provider_accel.spicepod.model import Dataset

PREFIX = "__accel_idx_"


@dataclass(frozen=True)
class IndexSpec:
    columns: tuple[str, ...]
    unique: bool

    def name(self, dataset: Dataset, *, case_sensitive: bool = False) -> str:
        # Index names share the schema's namespace (DuckDB, SQLite, PostgreSQL): the dataset name and
        # the columns keep them distinct, the hash keeps them short and free of quoting surprises.
        # Where table names differ by case (PostgreSQL), so does the hashed name.
        table = dataset.name if case_sensitive else dataset.name.casefold()
        digest = hashlib.sha1("\0".join((table, *self.columns)).encode()).hexdigest()[:12]
        return f"{PREFIX}{digest}"

    @property
    def text(self) -> str:
        columns = ", ".join(self.columns)
        return f"{'unique ' if self.unique else ''}index on ({columns})"


def specs(dataset: Dataset) -> tuple[IndexSpec, ...]:
    """The dataset's ``indexes``, as column tuples (invalid references were refused by the loader)."""
    acceleration = dataset.acceleration
    if acceleration is None:
        return ()
    out = []
    for reference, kind in acceleration.indexes.items():
        columns = column_reference(reference)
        if columns:
            out.append(IndexSpec(columns, kind == IndexKind.UNIQUE))
    return tuple(out)


def own_indexes(sql: LiveSql, dataset: Dataset, table: str | None = None) -> list[str]:
    """Names of the accelerator's indexes on the dataset's ``table`` (quoted; default: its own name)."""
    table = table or quote_identifier(dataset.name)
    return [name for name in sql.index_names(table, dataset.name) if name.startswith(PREFIX)]


def create(sql: LiveSql, dataset: Dataset, table: str, columns: list[str], *, suffix: str = "") -> int:
    """Create the dataset's missing indexes on ``table`` (quoted); returns how many were created.

    ``columns`` are the table's column names. A unique index the rows violate raises a terminal
    error naming the index; the caller's transaction (or staging file) is then discarded.
    ``suffix`` names the indexes of a staging table whose names must not meet the live table's
    (PostgreSQL's index names are schema-wide); :func:`rename_staged` gives them their own names.
    """
    wanted = specs(dataset)
    if not wanted:
        return 0
    present = set(own_indexes(sql, dataset, table))
    known = {c.casefold() for c in columns}
    case_sensitive = sql.capabilities.case_sensitive_names
    created = 0
    for spec in wanted:
        missing = [c for c in spec.columns if c.casefold() not in known]
        if missing:
            raise TerminalRefreshError(
                f"Dataset {dataset.name}: acceleration.indexes names {', '.join(missing)}, which the "
                f"accelerated table does not have (columns: {', '.join(columns[:20])}). Fix the index's "
                "columns or the refresh_sql's column list.",
                dataset=dataset.name,
            )
        name = spec.name(dataset, case_sensitive=case_sensitive) + suffix
        if name in present:
            continue
        keyword = "UNIQUE INDEX" if spec.unique else "INDEX"
        cols = ", ".join(quote_identifier(c) for c in spec.columns)
        try:
            sql.execute(f"CREATE {keyword} {quote_identifier(name)} ON {table} ({cols})")
        except Exception as err:
            if not sql.is_unique_violation(err):
                raise
            raise violation(dataset, spec, err) from err
        created += 1
    return created


def rename_staged(sql: LiveSql, dataset: Dataset, schema: str, suffix: str) -> None:
    """After the staged table went live: its indexes (``suffix``-named) take their own names."""
    for spec in specs(dataset):
        name = spec.name(dataset, case_sensitive=sql.capabilities.case_sensitive_names)
        staged = quote_identifier(name + suffix)
        sql.execute(f"ALTER INDEX {schema}.{staged} RENAME TO {quote_identifier(name)}")


def violation(dataset: Dataset, spec: IndexSpec, err: BaseException) -> TerminalRefreshError:
    return TerminalRefreshError(
        f"Dataset {dataset.name}: the refreshed rows violate the {spec.text} (acceleration.indexes): "
        f"{err}. The accelerated data is kept as it was. Remove the duplicates at the source, filter them "
        "with refresh_sql, or make the index 'enabled' instead of 'unique'.",
        dataset=dataset.name,
    )


def unique_violation(dataset: Dataset, err: BaseException) -> TerminalRefreshError | None:
    """An append's insert that broke a unique index, as a clear terminal error (``None``: not ours)."""
    unique = [s for s in specs(dataset) if s.unique]
    if not unique:
        return None
    spec = unique[0] if len(unique) == 1 else IndexSpec(tuple(c for s in unique for c in s.columns), True)
    return violation(dataset, spec, err)
