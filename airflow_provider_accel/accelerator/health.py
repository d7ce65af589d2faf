"""Is a dataset's live file readable right now? What the status API asks before it says ``Ready``.

Spice once reported a dataset healthy after DuckDB had invalidated its database (Spice #13513): the
status came from the last refresh, not from the file. Here a dataset whose latest refresh succeeded
is ``Ready`` only if its file opens read-only and every block of its table reads back (DuckDB checks
each block's checksum on read; ``count(*)`` alone is answered from metadata and misses a damaged
block). The answer is cached per file version (inode, size, modification time), so the check reads a
file once after each change, not on every status request.

A check ATTACHes the file read-only to one in-memory DuckDB per thread instead of opening a database
instance per file: starting an instance costs about 20 ms of CPU, an ATTACH under 1 ms, and after a
refresh wave over a 1,000-dataset pod the first status request checks every file (measured: 25 s
of CPU with an instance per file). The checks and their errors are DuckDB's own either way.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

if TYPE_CHECKING:
    from airflow_provider_accel.spicepod.model import Dataset

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileHealth:
    """``error`` is ``None`` for a readable file, else what is wrong and what to do."""

    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


_CACHE: dict[tuple[str, str], tuple[tuple[int, int, int], FileHealth]] = {}
_CACHE_LOCK = threading.Lock()
#: Files checked at most; a status page lists every dataset, so keep one entry per dataset file.
_CACHE_MAX = 10_000


#: The alias a file is attached under while it is checked (one check at a time per thread).
_CHECK_ALIAS = "accel_health_check"
_local = threading.local()


def _checker() -> duckdb.DuckDBPyConnection:
    """This thread's in-memory DuckDB that files are attached to (a new one after a fork)."""
    con: duckdb.DuckDBPyConnection | None = getattr(_local, "con", None)
    if con is None or getattr(_local, "pid", None) != os.getpid():
        con = duckdb.connect(":memory:")
        _local.con, _local.pid = con, os.getpid()
    return con


def _version(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return st.st_ino, st.st_size, st.st_mtime_ns


def _check(path: Path, table: str, dataset_name: str) -> FileHealth:
    from airflow_provider_accel.accelerator.integrity import is_corruption, read_every_block
    from airflow_provider_accel.accelerator.layout import read_turn
    from airflow_provider_accel.accelerator.reader import is_lock_conflict
    from airflow_provider_accel.sources.file import sql_string
    from airflow_provider_accel.sql.refresh_sql import quote_identifier

    todo = (
        "The next refresh moves it aside and rebuilds it from the source: trigger one with "
        f"POST /v1/datasets/{dataset_name}/acceleration/refresh."
    )
    con = _checker()
    try:
        # Queue behind a writer that announced an in-place write, as every reader does (layout.read_turn).
        with read_turn(path, 1.0):
            con.execute(f"ATTACH {sql_string(str(path))} AS {_CHECK_ALIAS} (READ_ONLY)")
    except duckdb.Error as err:
        con.execute(f"DETACH DATABASE IF EXISTS {_CHECK_ALIAS}")
        if is_lock_conflict(err):  # a writer has it open (an in-place write): not a damaged file
            return FileHealth()
        return FileHealth(f"The accelerated file {path} cannot be opened: {err}. {todo}")
    try:
        found = con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = ? AND lower(table_name) = lower(?)",
            [_CHECK_ALIAS, table],
        ).fetchall()[0][0]
        if not found:
            return FileHealth(f"The accelerated file {path} has no table {table}. {todo}")
        read_every_block(con, f"{_CHECK_ALIAS}.{quote_identifier(table)}")
    except duckdb.Error as err:
        why = "is corrupt" if is_corruption(err) else "cannot be read"
        return FileHealth(f"The accelerated file {path} {why}: {err}. {todo}")
    finally:
        con.execute(f"DETACH DATABASE IF EXISTS {_CHECK_ALIAS}")
    return FileHealth()


def file_health(dataset: Dataset, data_dir: str | Path | None = None) -> FileHealth:
    """Whether the dataset's live file can be opened and its table read in full (cached per version)."""
    from airflow_provider_accel.accelerator.layout import dataset_file

    path = dataset_file(dataset, data_dir)
    try:
        version = _version(path)
    except FileNotFoundError:
        return FileHealth(
            f"The accelerated file {path} is missing. Trigger a refresh to rebuild it: "
            f"POST /v1/datasets/{dataset.name}/acceleration/refresh."
        )
    except OSError as err:
        return FileHealth(f"The accelerated file {path} cannot be read: {err}.")
    key = (str(path), dataset.name.lower())
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
    if cached is not None and cached[0] == version:
        return cached[1]
    health = _check(path, dataset.name, dataset.name)
    if not health.ok:
        log.warning("Dataset %s: %s", dataset.name, health.error)
    with _CACHE_LOCK:
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
        _CACHE[key] = (version, health)
    return health


__all__ = ["FileHealth", "file_health"]
