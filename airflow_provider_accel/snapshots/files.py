"""Local DuckDB files as snapshots see them: a consistent copy of the live file, what it holds, checks."""

from __future__ import annotations

import contextlib
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

import duckdb

from airflow_provider_accel import config
from airflow_provider_accel.accelerator.layout import staging_file, wal_file, writer_lock
from airflow_provider_accel.exceptions import TerminalRefreshError
from airflow_provider_accel.sources.file import sql_string
from airflow_provider_accel.sql.refresh_sql import quote_identifier


def writer_id() -> str:
    """``[accel] snapshot_writer_id``: who publishes; default ``<hostname>:<data_dir>``."""
    return config._get("snapshot_writer_id", "") or f"{socket.gethostname()}:{config.data_dir()}"


def retention_count() -> int:
    """``[accel] snapshot_retention_count``: snapshots kept per dataset (the current one always is)."""
    return max(1, int(config._get("snapshot_retention_count", "10")))


def retention_days() -> float | None:
    """``[accel] snapshot_retention_days``: older snapshots are deleted too (unset: by count only)."""
    value = config._get("snapshot_retention_days", "")
    return float(value) if value else None


@dataclass(frozen=True)
class FileFacts:
    rows: int
    schema: list[list[str]]
    fingerprint: str


def inspect(path: Path, dataset: str) -> FileFacts:
    """Rows, columns and a row fingerprint of ``dataset``'s table in a private DuckDB file.

    The fingerprint is the sum of the rows' hashes: it ignores row order (a full refresh may load in
    any order) and counts duplicates, so "same fingerprint" means "same rows" for ``on_change``.
    A file that DuckDB cannot open, or without the table, is a :class:`TerminalRefreshError`.
    """
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as err:
        raise TerminalRefreshError(
            f"Dataset {dataset}: {path.name} is not a readable DuckDB file ({err}).", dataset=dataset
        ) from err
    try:
        tables = [
            name
            for (name,) in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()"
            ).fetchall()
        ]
        table = next((t for t in tables if t.casefold() == dataset.casefold()), None)
        if table is None:
            raise TerminalRefreshError(
                f"Dataset {dataset}: {path.name} has no table {dataset} "
                f"(tables: {', '.join(tables) or 'none'}).",
                dataset=dataset,
            )
        quoted = quote_identifier(table)
        schema = [[str(r[0]), str(r[1])] for r in con.execute(f"DESCRIBE {quoted}").fetchall()]
        rows, fingerprint = con.execute(
            f"SELECT count(*), coalesce(sum(hash(t)::HUGEINT), 0) FROM {quoted} AS t"
        ).fetchone() or (0, 0)
    except duckdb.Error as err:
        raise TerminalRefreshError(
            f"Dataset {dataset}: {path.name} cannot be read as a DuckDB file ({err}).", dataset=dataset
        ) from err
    finally:
        con.close()
    return FileFacts(rows=int(rows), schema=schema, fingerprint=f"{int(rows)}:{int(fingerprint):x}")


def is_corrupt(path: Path, dataset: str) -> str | None:
    """Why the live file cannot serve the dataset (``None`` if it opens and has its table)."""
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as err:
        if "lock" in str(err).lower():
            return None  # held by a reader or writer: busy, not corrupt
        return str(err)
    try:
        con.execute(f"SELECT count(*) FROM {quote_identifier(dataset)}").fetchall()
    except duckdb.Error as err:
        return str(err)
    finally:
        con.close()
    return None


def copy_live(live: Path, dataset: str, lock_timeout: float) -> Path:
    """A private, checkpointed copy of the live file, taken while holding its writer lock."""
    copy = staging_file(live)
    with writer_lock(live, lock_timeout, dataset=dataset):
        shutil.copyfile(live, copy)
        pending_wal = wal_file(live).exists()
        if pending_wal:
            shutil.copyfile(wal_file(live), wal_file(copy))
    if pending_wal:
        try:
            con = duckdb.connect(str(copy))
            try:
                con.execute("CHECKPOINT")
            finally:
                con.close()
        finally:
            with contextlib.suppress(FileNotFoundError):
                wal_file(copy).unlink()
    return copy


def compact(source: Path, dataset: str) -> Path:
    """``snapshots_compaction``: a rewritten copy of ``source`` without free blocks (COPY FROM DATABASE)."""
    target = staging_file(source)
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH {sql_string(str(source))} AS __snap_src (READ_ONLY)")
        con.execute(f"ATTACH {sql_string(str(target))} AS __snap_dst")
        con.execute("COPY FROM DATABASE __snap_src TO __snap_dst")
        con.execute("DETACH __snap_dst")
    except duckdb.Error as err:
        target.unlink(missing_ok=True)
        raise TerminalRefreshError(
            f"Dataset {dataset}: compacting the snapshot failed: {err}", dataset=dataset
        ) from err
    finally:
        con.close()
    return target
