"""Reading accelerated data from another process: the documented, supported way.

What a reader sees while a refresh runs:

* **A dataset with its own file**, during a *full* refresh: the new data is built in a staging file
  that is atomically renamed over the live file, so opening the live file read-only always works
  and shows either the old or the new table, complete — never an error, never a partial or empty
  table.
* **Everything written in place** — an *append*, *retention*, or any refresh of a dataset that
  shares its file with others (``params.duckdb_file``) — happens in one DuckDB transaction while
  the writer holds the file read-write. DuckDB lets no other process open a file it holds
  read-write, so an open meanwhile fails with DuckDB's lock-conflict ``IOException``
  (``Could not set lock on file ...``). That error, and only that one, is retryable; the helpers
  here retry it with a short backoff, so callers see the old or the new data, never the error.

Conversely, a reader that keeps a file open blocks the next in-place write (the writer waits for
it, up to ``[accel] lock_timeout``), so :func:`read_dataset` opens, queries and closes each time.
Keep connections from :func:`connect_reader` short-lived for the same reason. A writer about to
write in place announces it (an exclusive ``flock`` on ``<file>.intent``); :func:`connect_reader`
waits for that before opening, so a stream of readers cannot starve the writer.

This module imports neither Airflow nor the hook, so it is cheap to use anywhere.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from airflow_provider_accel.accelerator.layout import dataset_file, read_turn
from airflow_provider_accel.exceptions import SourceLockedError

if TYPE_CHECKING:
    import pyarrow as pa

    from airflow_provider_accel.spicepod.model import Dataset

_FIRST_DELAY = 0.005
_MAX_DELAY = 0.1


def is_lock_conflict(err: BaseException) -> bool:
    """Whether a DuckDB error is another process holding the file (the one retryable open error).

    DuckDB reports this as a generic ``IOException`` ("Could not set lock on file ... Conflicting
    lock is held ..."); its text is the only thing that tells it apart from, say, a permission
    error, so the check lives here and nowhere else.
    """
    return isinstance(err, duckdb.IOException) and "lock" in str(err).lower()


def _quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def connect_reader(path: str | os.PathLike[str], *, timeout: float = 10.0) -> duckdb.DuckDBPyConnection:
    """Open an accelerated DuckDB file read-only, waiting while a writer holds it.

    Only DuckDB's lock-conflict error is retried (short, growing, jittered delays) for up to
    ``timeout`` seconds; then :class:`~airflow_provider_accel.exceptions.SourceLockedError` is raised.
    Any other error (a missing file, a corrupt file, a permission error) is raised at once.
    Close the connection soon: while it is open, in-place writes to the file wait for it.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No accelerated DuckDB file at {path} (has the dataset been refreshed yet?)")
    deadline = time.monotonic() + timeout
    delay = _FIRST_DELAY
    while True:
        try:
            # Queue behind a writer that has announced an in-place write (see layout.read_turn).
            with read_turn(path, max(deadline - time.monotonic(), 0.0)):
                con = duckdb.connect(str(path), read_only=True)
        except duckdb.Error as err:
            if not is_lock_conflict(err):
                raise
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SourceLockedError(
                    f"{path} stayed locked by a writer for more than {timeout:g}s: {err}"
                ) from err
            time.sleep(min(remaining, delay * random.uniform(0.5, 1.5)))
            delay = min(delay * 2, _MAX_DELAY)
            continue
        try:
            # Naive timestamps and ISO-8601 strings are UTC here, as the accelerator reads them.
            con.execute("SET TimeZone = 'UTC'").fetchall()
        except BaseException:
            con.close()
            raise
        return con


def _sole_table(con: duckdb.DuckDBPyConnection, path: Path) -> str:
    names = [
        name
        for (name,) in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
            "UNION ALL SELECT view_name FROM duckdb_views() "
            "WHERE database_name = current_database() AND NOT internal"
        ).fetchall()
    ]
    if len(names) != 1:
        raise ValueError(
            f"{path} holds {len(names)} tables ({', '.join(sorted(names))}); "
            "pass the dataset, or a query naming the table"
        )
    return str(names[0])


def read_dataset(
    path_or_dataset: str | os.PathLike[str] | Dataset,
    sql: str | None = None,
    *,
    timeout: float = 10.0,
    data_dir: str | os.PathLike[str] | None = None,
) -> pa.Table:
    """Run one query on an accelerated file and return the result as an Arrow table.

    ``path_or_dataset`` is a DuckDB file path or a spicepod :class:`Dataset` (its file is found as the
    accelerator finds it, under ``data_dir`` or ``[accel] data_dir``). ``sql`` defaults to the whole
    dataset (``SELECT * FROM <dataset>``; for a path, the file's only table). The file is opened
    read-only, queried and closed: nothing is held between calls. A writer holding the file is waited
    for (see :func:`connect_reader`).
    """
    from airflow_provider_accel.spicepod.model import Dataset

    if isinstance(path_or_dataset, Dataset):
        path = dataset_file(path_or_dataset, data_dir)
        table_name: str | None = path_or_dataset.name
    else:
        path = Path(path_or_dataset)
        table_name = None
    con = connect_reader(path, timeout=timeout)
    try:
        if sql is None:
            sql = f"SELECT * FROM {_quote_identifier(table_name or _sole_table(con, path))}"
        return con.sql(sql).to_arrow_table()
    finally:
        con.close()


__all__ = ["connect_reader", "is_lock_conflict", "read_dataset"]
