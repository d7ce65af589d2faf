"""The refresh story of engines that receive Arrow batches (SQLite, PostgreSQL), written once.

The source side is the same as DuckDB's: :func:`~.strategies.plan_fetch` builds the mode's query
(``refresh_sql``, ``time_column``, ``refresh_data_window``, the append watermark and overlap, the
primary key's in-batch dedup) on a DuckDB connection that reads the source. Its rows then stream as
Arrow batches into the engine, which supplies only what differs (:class:`ArrowEngineHook`'s abstract
methods):

* :meth:`~ArrowEngineHook.writer_lock` — one writer per dataset,
* :meth:`~ArrowEngineHook.recover` — remove what an interrupted refresh left,
* :meth:`~ArrowEngineHook.inspect_live` — tables, columns, rows and watermark of the live data,
* :meth:`~ArrowEngineHook.replace` — stage the whole table and swap it in atomically,
* :meth:`~ArrowEngineHook.merge` — stage the increment and merge it in one transaction, with the
  shared :meth:`~.strategies.RefreshStrategy.merge` (conflict policies, schema check),
* :meth:`~ArrowEngineHook.delete_where` — retention's DELETE (the period, the ``retention_sql``),
* :meth:`~ArrowEngineHook.recorded_source` / :meth:`~ArrowEngineHook.record_source` — the source's
  columns at the last committed refresh, which a full refresh's ``on_schema_change`` compares with,
* :meth:`~ArrowEngineHook.classify` — its errors, transient or terminal by type.
"""

from __future__ import annotations

import abc
import contextlib
import datetime as dt
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import duckdb
import pyarrow as pa

from airflow_provider_accel import config
from airflow_provider_accel.accelerator import retention, schema_change
from airflow_provider_accel.accelerator.hook import (
    DuckDBAcceleratorHook,
    _acceleration_of,
    classify_duckdb_error,
    source_stream_error,
)
from airflow_provider_accel.accelerator.result import RefreshResult, RetentionResult
from airflow_provider_accel.accelerator.strategies import FetchPlan, LiveState, plan_fetch, strategy_for
from airflow_provider_accel.accelerator.streams import CountingReader
from airflow_provider_accel.accelerator.timefilter import TimeColumn
from airflow_provider_accel.exceptions import RefreshError, TerminalRefreshError
from airflow_provider_accel.sources import Source, source_for

if TYPE_CHECKING:
    from airflow_provider_accel.accelerator.engine import EngineCapabilities
    from airflow_provider_accel.accelerator.modes import RefreshMode
    from airflow_provider_accel.spicepod.model import Dataset

log = logging.getLogger(__name__)

#: Rows per Arrow batch handed from DuckDB to the engine.
BATCH_ROWS = 122_880


@dataclass
class ArrowStream:
    """The refresh's rows, as DuckDB produces them, with the Arrow bytes counted as they pass."""

    schema: pa.Schema
    duckdb_types: list[tuple[str, str]]  # (column, DuckDB type) of the fetch query
    reader: pa.RecordBatchReader
    bytes: int = 0
    rows: int = 0
    #: The source's (name, Arrow type) columns, recorded with the commit (see :mod:`.schema_change`).
    source_columns: list[tuple[str, str]] = field(default_factory=list)

    def batches(self) -> Iterator[pa.RecordBatch]:
        for batch in self.reader:
            self.bytes += int(batch.nbytes)
            self.rows += batch.num_rows
            yield batch

    def counted_reader(self) -> pa.RecordBatchReader:
        return pa.RecordBatchReader.from_batches(self.schema, self.batches())


@dataclass(frozen=True)
class Written:
    """What a commit reports: rows this refresh wrote, and the live table's rows and watermark after."""

    rows: int
    total_rows: int
    watermark: str | None


class ArrowEngineHook(abc.ABC):
    """Accelerates datasets into an engine fed with Arrow batches; see the module docstring.

    :param duckdb_conn_id: the DuckDB settings connection of the fetch side (``memory_limit``, ...).
    :param data_dir: directory of dataset files, lock files and DuckDB spill files.
    :param lock_timeout: seconds to wait for a dataset's writer lock.
    """

    capabilities: ClassVar[EngineCapabilities]

    def __init__(
        self,
        duckdb_conn_id: str | None = None,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        lock_timeout: float | None = None,
    ) -> None:
        directory = None if data_dir is None else Path(data_dir)
        self.fetcher = DuckDBAcceleratorHook(duckdb_conn_id, data_dir=directory, lock_timeout=lock_timeout)
        self.data_dir = self.fetcher.data_dir
        self.lock_timeout = config.lock_timeout() if lock_timeout is None else lock_timeout

    # -- what each engine supplies -------------------------------------------------------------

    @abc.abstractmethod
    def location(self, dataset: Dataset) -> str:
        """Where the dataset's data lives (a file path, or ``host:port/db.schema.table``), no secret."""

    @abc.abstractmethod
    def writer_lock(self, dataset: Dataset) -> contextlib.AbstractContextManager[Any]:
        """Held for a whole refresh or retention: one writer per dataset."""

    @abc.abstractmethod
    def recover(self, dataset: Dataset) -> None:
        """Remove what an interrupted refresh left (staging files or tables)."""

    @abc.abstractmethod
    def inspect_live(self, dataset: Dataset, *, want_watermark: bool, want_rows: bool = True) -> LiveState:
        """The live data's tables, the dataset's columns, and (if asked) row count and watermark.

        Without ``want_rows`` the row count stays 0: a full refresh replaces the table whatever it
        holds, and counting a large live table is a full scan the load would wait for.
        """

    @abc.abstractmethod
    def replace(self, dataset: Dataset, stream: ArrowStream, live: LiveState) -> Written:
        """Stage the whole new table and make it live atomically."""

    @abc.abstractmethod
    def merge(self, dataset: Dataset, stream: ArrowStream, plan: FetchPlan) -> Written:
        """Stage the increment and merge it into the live table in one transaction."""

    @abc.abstractmethod
    def delete_where(
        self, dataset: Dataset, period: tuple[TimeColumn, Any] | None, condition: str | None
    ) -> tuple[int, int]:
        """Retention, in one transaction: delete rows whose time column is before the ``period``'s
        cutoff, or that the ``retention_sql`` ``condition`` matches; (deleted, rows left)."""

    @abc.abstractmethod
    def recorded_source(self, dataset: Dataset) -> list[tuple[str, str]] | None:
        """The source's columns at the last committed refresh (``None``: unknown)."""

    def record_source(self, dataset: Dataset, columns: list[tuple[str, str]]) -> None:  # noqa: B027
        """After a committed refresh, for engines that do not record it in the commit itself."""

    @abc.abstractmethod
    def classify(self, err: Exception, dataset: str, doing: str) -> RefreshError | None:
        """The engine's error as a transient or terminal refresh error, or ``None`` if not its own."""

    @abc.abstractmethod
    def naming(self, dataset: Dataset) -> tuple[str, str]:
        """OpenLineage's ``(namespace, name)`` of the accelerated table."""

    @abc.abstractmethod
    def preview(self, dataset: Dataset, limit: int) -> tuple[list[tuple[str, str]], int | None, list[Any]]:
        """For the API and UI: (columns with engine types, row count, first ``limit`` rows)."""

    # -- the shared story ----------------------------------------------------------------------

    def table_stats(self, dataset: Dataset) -> tuple[int, str | None]:
        """Rows and watermark of the live table (for status pages and the refresh summary)."""
        live = self.inspect_live(dataset, want_watermark=True)
        return live.row_count, None if live.watermark is None else str(live.watermark)

    def refresh(
        self,
        dataset: Dataset,
        *,
        mode: RefreshMode | None = None,
        refresh_sql: str | None = None,
        source: Source | None = None,
        now: dt.datetime | None = None,
    ) -> RefreshResult:
        """Refresh ``dataset`` (``full`` or ``append``); the live data is untouched if it fails."""
        started = time.monotonic()
        acceleration = _acceleration_of(dataset)
        strategy = strategy_for(dataset, mode or acceleration.refresh_mode)
        now = now or dt.datetime.now(dt.UTC)
        source = source or source_for(dataset)
        self.fetcher.use_memory_budget(dataset)
        plan: FetchPlan | None = None
        try:
            with self.writer_lock(dataset):
                self.recover(dataset)
                # Only an append reads the live table's rows (an empty one means a full fetch).
                live = self.inspect_live(
                    dataset, want_watermark=strategy.reads_watermark, want_rows=strategy.reads_watermark
                )
                with contextlib.closing(self.fetcher.connect(":memory:")) as con:
                    plan = plan_fetch(dataset, strategy, refresh_sql, source, con, live, now, CountingReader)
                    # Read before the stream opens: DuckDB runs one result at a time on a connection.
                    source_columns = schema_change.source_columns(source.schema(con))
                    stream = self._stream(con, plan, dataset, source)
                    stream.source_columns = source_columns
                    if plan.replace:
                        previous = self.recorded_source(dataset) if live.table_exists else None
                        if previous is not None:  # on_schema_change, before going live
                            schema_change.check_rebuild(dataset, previous, stream.source_columns)
                        written = self.replace(dataset, stream, live)
                    else:
                        written = self.merge(dataset, stream, plan)
                self.record_source(dataset, stream.source_columns)
        except RefreshError:
            raise
        except duckdb.Error as err:
            if plan is not None and plan.counter is not None and plan.counter.error is not None:
                raise source_stream_error(plan.counter.error, dataset.name, source) from err
            raise classify_duckdb_error(err, dataset.name, "refresh") from err
        except Exception as err:
            if plan is not None and plan.counter is not None and plan.counter.error is not None:
                raise source_stream_error(plan.counter.error, dataset.name, source) from err
            classified = self.classify(err, dataset.name, "refresh")
            if classified is None:
                raise
            raise classified from err
        finally:
            source.close()
        return RefreshResult(
            dataset=dataset.name,
            mode=strategy.mode.value,
            rows=written.rows,
            bytes=plan.counter.bytes if plan.counter is not None else stream.bytes,
            duration_ms=round((time.monotonic() - started) * 1000),
            total_rows=written.total_rows,
            watermark=written.watermark,
            path=self.location(dataset),
            refresh_sql=refresh_sql,
        )

    def stream_sql(self, select_sql: str, duckdb_types: list[tuple[str, str]]) -> str:
        """The fetch query as the engine wants its columns (SQLite converts types; others keep them)."""
        return select_sql

    def _stream(
        self, con: duckdb.DuckDBPyConnection, plan: FetchPlan, dataset: Dataset, source: Source
    ) -> ArrowStream:
        try:
            described = con.execute(f"DESCRIBE {plan.select_sql}").fetchall()
        except duckdb.BinderException as err:
            raise TerminalRefreshError(
                f"Dataset {dataset.name}: the source {source.description} does not match the refresh: {err}",
                dataset=dataset.name,
            ) from err
        types = [(str(row[0]), str(row[1])) for row in described]
        reader = con.sql(self.stream_sql(plan.select_sql, types)).to_arrow_reader(BATCH_ROWS)
        return ArrowStream(reader.schema, types, reader)

    def apply_retention(self, dataset: Dataset, *, now: dt.datetime | None = None) -> RetentionResult:
        """Delete rows older than ``now - retention_period`` and rows the ``retention_sql`` matches."""
        started = time.monotonic()
        now = now or dt.datetime.now(dt.UTC)
        retention.condition(dataset, now)  # refuses a dataset with neither a period nor a retention_sql
        period = retention.period_cutoff(dataset, now)
        try:
            with self.writer_lock(dataset):
                self.recover(dataset)
                deleted, total = self.delete_where(dataset, period, retention.sql_condition(dataset))
        except RefreshError:
            raise
        except Exception as err:
            classified = self.classify(err, dataset.name, "retention")
            if classified is None:
                raise
            raise classified from err
        return RetentionResult(
            dataset=dataset.name,
            deleted_rows=deleted,
            total_rows=total,
            cutoff=None if period is None else str(period[1]),
            duration_ms=round((time.monotonic() - started) * 1000),
        )
