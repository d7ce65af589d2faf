"""What a refresh does with incoming rows that the accelerated table already holds.

One policy per ``on_conflict`` action (and one for a dataset without a primary key). A policy says
which incoming rows survive within the batch (:meth:`ConflictPolicy.dedup_incoming`) and how the
staged rows enter the live table on an in-place append (:meth:`ConflictPolicy.insert`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_accel.accelerator.timefilter import TimeColumn
from airflow_provider_accel.spicepod.model import OnConflict
from airflow_provider_accel.sql.refresh_sql import quote_identifier

if TYPE_CHECKING:
    from airflow_provider_accel.accelerator.engine import LiveSql
    from airflow_provider_accel.spicepod.model import Dataset


@dataclass(frozen=True)
class AppendTarget:
    """The live table and the staged rows of an in-place append, as SQL names."""

    dataset: Dataset
    table: str  # quoted name of the live table
    staged: str  # qualified, quoted name of the staged table
    columns: tuple[str, ...]  # staged column names, in order
    dedup_cutoff: Any  # rows at or after this instant may already be accelerated (or None)


class ConflictPolicy:
    """No primary key: every incoming row is kept, except exact copies re-read in the overlap window."""

    #: :meth:`insert` may delete live rows (so the table's statistics need recomputing).
    deletes_rows: ClassVar[bool] = False

    def dedup_incoming(self, dataset: Dataset, select: str) -> str:
        """The fetch query, keeping only the incoming rows this policy lets through."""
        return select

    def insert(self, sql: LiveSql, target: AppendTarget) -> int:
        """Insert the staged rows into the live table; returns the rows inserted."""
        condition = ""
        if target.dedup_cutoff is not None and target.dataset.time_column:
            equal = sql.capabilities.null_safe_equal
            same_row = " AND ".join(
                f"t.{quote_identifier(c)} {equal} s.{quote_identifier(c)}" for c in target.columns
            )
            # Every incoming row is at or after the cutoff and the time column is one of the compared
            # columns, so the window below only narrows the scan: engines without typed time
            # literals (SQLite) compare every accelerated row instead, with the same result.
            window = ""
            if sql.capabilities.typed_time_literals:
                time_column = TimeColumn(target.dataset.time_column, target.dataset.time_format)
                window = f"{time_column.at_or_after(target.dedup_cutoff, qualifier='t')} AND "
            condition = f" WHERE NOT EXISTS (SELECT 1 FROM {target.table} AS t WHERE {window}{same_row})"
        return _insert(sql, target, condition)


class _KeyedPolicy(ConflictPolicy):
    """A primary key with an ``on_conflict`` action: one row per key, in the batch and in the table."""

    #: Within one batch, keep the newest row of a key (by time_column) rather than the oldest.
    keep_newest: bool

    def dedup_incoming(self, dataset: Dataset, select: str) -> str:
        acceleration = dataset.acceleration
        assert acceleration is not None
        keys = ", ".join(quote_identifier(k) for k in acceleration.primary_key)
        order = ""
        if dataset.time_column:
            direction = "DESC" if self.keep_newest else "ASC"
            instant = TimeColumn(dataset.time_column, dataset.time_format).instant_sql()
            order = f" ORDER BY {instant} {direction}"
        return f"SELECT * FROM ({select}) QUALIFY row_number() OVER (PARTITION BY {keys}{order}) = 1"

    @staticmethod
    def key_match(dataset: Dataset) -> str:
        acceleration = dataset.acceleration
        assert acceleration is not None
        keys = [quote_identifier(k) for k in acceleration.primary_key]
        return " AND ".join(f"t.{k} = s.{k}" for k in keys)


class DropIncoming(_KeyedPolicy):
    """``drop``: an incoming row whose key is already accelerated is dropped."""

    keep_newest = False

    def insert(self, sql: LiveSql, target: AppendTarget) -> int:
        match = self.key_match(target.dataset)
        return _insert(sql, target, f" WHERE NOT EXISTS (SELECT 1 FROM {target.table} AS t WHERE {match})")


class Upsert(_KeyedPolicy):
    """``upsert``: an incoming row replaces the accelerated row of its key."""

    keep_newest = True
    deletes_rows = True

    def insert(self, sql: LiveSql, target: AppendTarget) -> int:
        match = self.key_match(target.dataset)
        incoming = f"SELECT 1 FROM {target.staged} AS s WHERE {match}"
        sql.count(f"DELETE FROM {target.table} AS t WHERE EXISTS ({incoming})")
        return _insert(sql, target, "")


def _insert(sql: LiveSql, target: AppendTarget, condition: str) -> int:
    # By name: after an on_schema_change evolution the live table's column order is not the source's.
    names = ", ".join(quote_identifier(c) for c in target.columns)
    return sql.count(
        f"INSERT INTO {target.table} ({names}) SELECT {names} FROM {target.staged} AS s{condition}"
    )


#: The policy of each ``on_conflict`` action (``None``: no primary key, or no action).
CONFLICT_POLICIES: dict[OnConflict | None, ConflictPolicy] = {
    None: ConflictPolicy(),
    OnConflict.DROP: DropIncoming(),
    OnConflict.UPSERT: Upsert(),
    # Spice's in-batch variants: several incoming rows of one key keep the newest, which Upsert
    # already does for every batch (plain upsert here never fails on in-batch duplicates).
    OnConflict.UPSERT_DEDUP: Upsert(),
    OnConflict.UPSERT_DEDUP_BY_ROW_ID: Upsert(),
}


def policy_for(dataset: Dataset) -> ConflictPolicy:
    """The conflict policy of ``dataset``'s ``on_conflict`` action."""
    acceleration = dataset.acceleration
    assert acceleration is not None
    return CONFLICT_POLICIES[acceleration.conflict_action]
