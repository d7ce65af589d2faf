"""The last steps of a refresh on the table that is about to go live, in the same commit as its data.

Run on the staged table of a full refresh (in the staging file, before it is swapped in) and on the
live table inside the transaction of an in-place write (an append, or a shared file). In order:

1. ``on_refresh_sort_columns``: the table is rewritten in that order (:mod:`.duckdb_params`);
2. ``retention_sql``: the rows it matches are deleted (:mod:`.retention`);
3. ``indexes``: missing indexes are created; a violated unique index fails the refresh (:mod:`.indexes`);
4. ``on_refresh_recompute_statistics``: ``ANALYZE`` (:mod:`.duckdb_params`). An append that only
   inserted rows, fewer than a tenth of the table, keeps the statistics DuckDB maintains as it
   inserts: ``ANALYZE`` reads the whole table, which would make every small append cost what the
   table holds rather than what it adds.

Every step is SQL on the connection it is given, so any engine that runs these statements in one
transaction (or one staging database) gets the same semantics: the SQLite and PostgreSQL engines run
steps 2 and 3 (:func:`evict_and_index`) on their staged or live table; sorting and ``ANALYZE`` are
DuckDB params.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from airflow_provider_accel.accelerator import duckdb_params, indexes, retention
from airflow_provider_accel.accelerator.duckdb_sql import DuckDBLiveSql, describe

if TYPE_CHECKING:
    import duckdb

    from airflow_provider_accel.accelerator.engine import LiveSql
    from airflow_provider_accel.spicepod.model import Dataset

log = logging.getLogger(__name__)


def finish_table(
    con: duckdb.DuckDBPyConnection, dataset: Dataset, table: str, *, appended: tuple[int, int] | None = None
) -> int:
    """Sort, evict by retention_sql, index and analyze ``table`` (quoted); returns the rows evicted.

    ``appended``: (rows the table held, rows inserted) of an in-place append that deleted nothing;
    ``None`` when the table was built, rebuilt or had rows replaced.
    """
    columns = [name for name, _ in describe(con, table)]
    duckdb_params.sort(con, dataset, table, columns)
    evicted = evict_and_index(DuckDBLiveSql(con), dataset, table, columns)
    if appended is None or evicted or duckdb_params.statistics_stale(*appended):
        duckdb_params.analyze(con, dataset, table)
    return evicted


def evict_and_index(
    sql: LiveSql, dataset: Dataset, table: str, columns: list[str], *, index_suffix: str = ""
) -> int:
    """Steps 2 and 3 on any engine: evict by retention_sql, create missing indexes; rows evicted."""
    evicted = 0
    condition = retention.on_refresh_condition(dataset)
    if condition is not None:
        evicted = retention.evict(sql, table, condition)
        if evicted:
            log.info("Dataset %s: retention_sql evicted %s rows of this refresh", dataset.name, evicted)
    indexes.create(sql, dataset, table, columns, suffix=index_suffix)
    return evicted
