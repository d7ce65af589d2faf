"""One strategy per refresh mode: what to fetch, how to filter it, how to reconcile it with the live table.

:func:`plan_fetch` builds the part every mode shares (the source's columns, ``refresh_sql``,
``time_column``, ``refresh_data_window``, the conflict policy's in-batch dedup) and asks the mode's
strategy for its own filter (:meth:`RefreshStrategy.increment`). When the staged rows are merged into
a live table in place, :meth:`RefreshStrategy.merge` reconciles them with it.

Which modes have a strategy follows :data:`~.modes.REFRESH_MODES`: every mode that re-fetches.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_accel.accelerator import indexes, schema_change
from airflow_provider_accel.accelerator.conflict import AppendTarget, ConflictPolicy, policy_for
from airflow_provider_accel.accelerator.modes import REFETCHING_MODES, RefreshMode
from airflow_provider_accel.accelerator.timefilter import TimeColumn
from airflow_provider_accel.exceptions import RefreshSqlError, TerminalRefreshError
from airflow_provider_accel.sources.base import ScanRequest
from airflow_provider_accel.sql.refresh_sql import quote_identifier, validate_refresh_sql

if TYPE_CHECKING:
    import duckdb

    from airflow_provider_accel.accelerator.engine import LiveSql
    from airflow_provider_accel.accelerator.streams import CountingReader
    from airflow_provider_accel.sources import Source
    from airflow_provider_accel.spicepod.model import Dataset

SOURCE_VIEW = "__accel_source"


@dataclass
class LiveState:
    """What the live data holds before a refresh (read while holding the writer lock)."""

    exists: bool = False
    table_exists: bool = False
    other_tables: list[str] = field(default_factory=list)
    columns: list[tuple[str, str]] = field(default_factory=list)  # (name, engine type)
    row_count: int = 0
    watermark: Any = None

    @property
    def exclusive(self) -> bool:
        """The file holds no other dataset, so it may be replaced as a whole."""
        return not self.other_tables


@dataclass(frozen=True)
class Increment:
    """A mode's own part of the fetch."""

    replace: bool  # build the whole table anew (full, or an append into an empty table)
    predicates: tuple[str, ...] = ()
    dedup_cutoff: Any = None  # append: existing rows at or after this may equal incoming rows


@dataclass(frozen=True)
class FetchPlan:
    """What one refresh fetches from its source, and how it lands in the live table."""

    strategy: RefreshStrategy
    replace: bool
    select_sql: str
    conflict: ConflictPolicy
    dedup_cutoff: Any = None
    counter: CountingReader | None = None  # set when the source streams Arrow batches

    @property
    def mode(self) -> RefreshMode:
        return self.strategy.mode


@dataclass(frozen=True)
class FetchRequest:
    """Everything a strategy may look at to decide its filter."""

    dataset: Dataset
    live: LiveState
    time_column: TimeColumn | None
    columns: tuple[str, ...] | None  # the refresh_sql's projection, if it has one


class RefreshStrategy:
    """The behaviour of one refresh mode."""

    mode: ClassVar[RefreshMode]
    #: The live table's watermark (``max(time_column)``) is read before fetching.
    reads_watermark: ClassVar[bool] = False

    def increment(self, request: FetchRequest) -> Increment:
        raise NotImplementedError

    def merge(self, sql: LiveSql, plan: FetchPlan, target: AppendTarget) -> int:
        """Bring the staged rows into the live table, in the caller's transaction; rows written.

        ``sql`` is the live data's connection on whichever engine holds it.
        """
        raise NotImplementedError


class FullRefresh(RefreshStrategy):
    """``full``: fetch everything the filters allow; the new table replaces the old one."""

    mode = RefreshMode.FULL

    def increment(self, request: FetchRequest) -> Increment:
        return Increment(replace=True)


class AppendRefresh(RefreshStrategy):
    """``append``: fetch rows at or after ``watermark - refresh_append_overlap`` and add them."""

    mode = RefreshMode.APPEND
    reads_watermark = True

    def increment(self, request: FetchRequest) -> Increment:
        dataset, live, time_column = request.dataset, request.live, request.time_column
        acceleration = dataset.acceleration
        assert acceleration is not None
        if (
            request.columns is not None
            and time_column is not None
            and time_column.name.casefold() not in {c.casefold() for c in request.columns}
        ):
            raise TerminalRefreshError(
                f"Dataset {dataset.name}: an append refresh must select the time_column "
                f"{time_column.name!r}; add it to the refresh_sql's column list.",
                dataset=dataset.name,
            )
        if not live.table_exists or live.row_count == 0:
            return Increment(replace=True)  # an empty accelerated table means a full fetch
        if time_column is None or live.watermark is None:
            return Increment(replace=False)
        overlap = acceleration.refresh_append_overlap or dt.timedelta(0)
        cutoff = time_column.minus(live.watermark, overlap)
        # >= and dedup, with or without overlap: rows sharing the watermark's instant (or day) may
        # arrive in a later batch, and the ones already accelerated are dropped as equal.
        return Increment(replace=False, predicates=(time_column.at_or_after(cutoff),), dedup_cutoff=cutoff)

    def merge(self, sql: LiveSql, plan: FetchPlan, target: AppendTarget) -> int:
        live, staged = sql.describe(target.table), sql.describe(target.staged)
        # on_schema_change: the engine's evolve step alters the live table in this transaction, or
        # the append is refused.
        schema_change.evolve(sql, target.dataset, target.table, live, staged)
        try:
            return plan.conflict.insert(sql, target)
        except Exception as err:
            unique = sql.is_unique_violation(err)
            violation = indexes.unique_violation(target.dataset, err) if unique else None
            if violation is None:
                raise
            raise violation from err


def check_same_columns(dataset: Dataset, live: list[tuple[str, str]], staged: list[tuple[str, str]]) -> None:
    """Refuse a rebuilt table whose columns the dataset's ``on_schema_change`` does not allow.

    One implementation for every path (:mod:`.schema_change`); an append evolves the live table with
    :func:`.schema_change.evolve` instead.
    """
    schema_change.check_rebuild(dataset, live, staged)


#: The strategy of each mode that re-fetches (see :data:`~.modes.REFRESH_MODES`).
STRATEGIES: dict[RefreshMode, RefreshStrategy] = {s.mode: s for s in (FullRefresh(), AppendRefresh())}
assert set(STRATEGIES) == set(REFETCHING_MODES), "every re-fetching mode needs a strategy"


def strategy_for(dataset: Dataset, mode: RefreshMode) -> RefreshStrategy:
    """The strategy of ``mode``, or a terminal error naming the modes that can be refreshed."""
    strategy = STRATEGIES.get(mode)
    if strategy is None:
        allowed = " or ".join(m.value for m in REFETCHING_MODES)
        raise TerminalRefreshError(
            f"Dataset {dataset.name}: refresh_mode {mode.value} cannot be refreshed here; use {allowed}.",
            dataset=dataset.name,
        )
    return strategy


# -- the shared part of every fetch ------------------------------------------------------------


def _refresh_sql_parts(
    dataset: Dataset, refresh_sql: str | None, source_columns: list[str]
) -> tuple[tuple[str, ...] | None, int | None, list[str]]:
    """The refresh_sql's (projection, limit, predicates)."""
    if not refresh_sql:
        return None, None, []
    try:
        refresh_filter = validate_refresh_sql(refresh_sql, dataset.name, source_columns)
    except RefreshSqlError as err:
        raise TerminalRefreshError(str(err), dataset=dataset.name) from err
    return (
        refresh_filter.columns,
        refresh_filter.limit,
        [refresh_filter.where] if refresh_filter.where else [],
    )


def _source_time_column(dataset: Dataset, source: Source, source_columns: list[str]) -> TimeColumn | None:
    if not dataset.time_column:
        return None
    if dataset.time_column.casefold() not in {c.casefold() for c in source_columns}:
        raise TerminalRefreshError(
            f"Dataset {dataset.name}: time_column {dataset.time_column!r} is not a column of the "
            f"source {source.description} (columns: {', '.join(source_columns[:20])}).",
            dataset=dataset.name,
        )
    return TimeColumn(dataset.time_column, dataset.time_format)


def plan_fetch(
    dataset: Dataset,
    strategy: RefreshStrategy,
    refresh_sql: str | None,
    source: Source,
    con: duckdb.DuckDBPyConnection,
    live: LiveState,
    now: dt.datetime,
    counting: type[CountingReader],
) -> FetchPlan:
    """The query that fetches this refresh's rows into the staging connection ``con``."""
    acceleration = dataset.acceleration
    assert acceleration is not None
    source.prepare(con)
    source_columns = source.schema(con).names
    columns, limit, predicates = _refresh_sql_parts(dataset, refresh_sql, source_columns)
    time_column = _source_time_column(dataset, source, source_columns)
    if time_column is not None and acceleration.refresh_data_window is not None:
        window_start = time_column.from_instant(now - acceleration.refresh_data_window)
        predicates.append(time_column.after(window_start))
    increment = strategy.increment(FetchRequest(dataset, live, time_column, columns))
    predicates.extend(increment.predicates)

    where = " AND ".join(f"({p})" for p in predicates) or None
    scan = source.scan(ScanRequest(columns=columns, where=where, limit=limit), con)
    counter = None
    if scan.reader is not None:
        counter = counting(scan.reader)
        con.register(SOURCE_VIEW, counter.stream())
        from_sql = SOURCE_VIEW
    else:
        from_sql = f"({scan.duckdb_sql})"
    projection = ", ".join(quote_identifier(c) for c in columns) if columns is not None else "*"
    select = f"SELECT {projection} FROM {from_sql} AS __src"
    if where:
        select += f" WHERE {where}"
    conflict = policy_for(dataset)
    select = conflict.dedup_incoming(dataset, select)
    if limit is not None:
        select += f" LIMIT {int(limit)}"
    return FetchPlan(
        strategy=strategy,
        replace=increment.replace,
        select_sql=select,
        conflict=conflict,
        dedup_cutoff=increment.dedup_cutoff,
        counter=counter,
    )
