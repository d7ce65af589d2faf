"""One committer per write path: how a staged refresh becomes the live data.

* :class:`FileSwapCommitter` — the staging file, checkpointed, is renamed over the live file. Readers
  see the old file or the new one, never a mix, and never wait.
* :class:`InPlaceCommitter` — the staging file is attached to the live file and the rows are brought
  over in one transaction (an append, or a file shared with other datasets).

A committer asks the engine for the live file through :class:`LiveFiles` (the hook), so that the
writer lock, the readers' write intent and the rename stay in one place. Which committer runs is
chosen by :func:`committer_for` from the plan, the live state and the engine's capabilities.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

import duckdb

from airflow_provider_accel.accelerator.conflict import AppendTarget
from airflow_provider_accel.accelerator.duckdb_sql import STAGING_ALIAS, DuckDBLiveSql, run, scalar
from airflow_provider_accel.accelerator.engine import EngineCapabilities
from airflow_provider_accel.accelerator.finish import finish_table
from airflow_provider_accel.sources.file import sql_string
from airflow_provider_accel.sql.refresh_sql import quote_identifier

if TYPE_CHECKING:
    from airflow_provider_accel.accelerator.strategies import FetchPlan, LiveState
    from airflow_provider_accel.spicepod.model import Dataset

T = TypeVar("T")
#: (row count, watermark) of a dataset's table, for the refresh summary.
TableStats = tuple[int, str | None]


@dataclass(frozen=True)
class StagedRefresh:
    """A refresh whose rows are loaded into the staging file, ready to go live."""

    dataset: Dataset
    plan: FetchPlan
    staging: Path
    path: Path
    loaded_rows: int
    staged_stats: TableStats
    incoming_bytes: int  # Arrow bytes received from the source (estimated for a native scan)


@dataclass(frozen=True)
class CommitOutcome:
    rows: int  # rows written by this refresh
    total_rows: int
    watermark: str | None
    wasteful: bool = False  # the live file now holds enough free space to be compacted


class LiveFiles(Protocol):
    """What a committer needs from the engine that owns the live files."""

    def replace_file(self, job: StagedRefresh) -> None: ...

    def _merge_into_live(
        self, path: Path, dataset: Dataset, apply: Callable[[duckdb.DuckDBPyConnection], T]
    ) -> T: ...

    def table_stats(self, con: duckdb.DuckDBPyConnection, dataset: Dataset) -> TableStats: ...

    def wasteful(self, con: duckdb.DuckDBPyConnection) -> bool: ...


class Committer(Protocol):
    def commit(self, job: StagedRefresh, files: LiveFiles) -> CommitOutcome: ...


class FileSwapCommitter:
    """The staged file replaces the live file by an atomic rename."""

    def commit(self, job: StagedRefresh, files: LiveFiles) -> CommitOutcome:
        files.replace_file(job)
        total_rows, watermark = job.staged_stats
        return CommitOutcome(job.loaded_rows, total_rows, watermark)


class InPlaceCommitter:
    """The staged rows enter the live file in one transaction on its read-write connection."""

    def commit(self, job: StagedRefresh, files: LiveFiles) -> CommitOutcome:
        def apply(con: duckdb.DuckDBPyConnection) -> CommitOutcome:
            written = self._transaction(con, job)
            run(con, f"DETACH {STAGING_ALIAS}")
            run(con, "CHECKPOINT")
            total_rows, watermark = files.table_stats(con, job.dataset)
            return CommitOutcome(written, total_rows, watermark, files.wasteful(con))

        return files._merge_into_live(job.path, job.dataset, apply)

    @staticmethod
    def _transaction(con: duckdb.DuckDBPyConnection, job: StagedRefresh) -> int:
        table = quote_identifier(job.dataset.name)
        staged = f"{STAGING_ALIAS}.{table}"
        try:
            run(con, f"ATTACH {sql_string(str(job.staging))} AS {STAGING_ALIAS} (READ_ONLY)")
            run(con, "BEGIN TRANSACTION")
            appended = None
            if job.plan.replace:
                run(con, f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM {staged}")
                written = int(scalar(con, f"SELECT count(*) FROM {table}"))
            else:
                columns = tuple(c[0] for c in run(con, f"DESCRIBE {staged}"))
                target = AppendTarget(job.dataset, table, staged, columns, job.plan.dedup_cutoff)
                before = int(scalar(con, f"SELECT count(*) FROM {table}"))
                written = job.plan.strategy.merge(DuckDBLiveSql(con), job.plan, target)
                if not job.plan.conflict.deletes_rows:
                    appended = (before, written)
            # sort, retention_sql, indexes, statistics
            finish_table(con, job.dataset, table, appended=appended)
            run(con, "COMMIT")
            return written
        except duckdb.Error:
            with contextlib.suppress(duckdb.Error):
                run(con, "ROLLBACK")
            raise


FILE_SWAP = FileSwapCommitter()
IN_PLACE = InPlaceCommitter()


def committer_for(plan: FetchPlan, live: LiveState, capabilities: EngineCapabilities) -> Committer:
    """Swap the whole file when the refresh rebuilds a table that has its file to itself."""
    if plan.replace and live.exclusive and capabilities.atomic_file_swap:
        return FILE_SWAP
    return IN_PLACE
