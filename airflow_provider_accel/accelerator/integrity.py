"""Never report what did not happen: commit verification, corrupt files, disk-full and OOM errors.

* **Commit verification.** After a staging file is swapped in (or rows are written in place), the
  live file is opened afresh and its table's row count and watermark are compared with what was
  staged. A swap keeps a hard link to the previous file until the check passes (no extra disk
  space), and puts it back if the check fails.
* **Corrupt files.** DuckDB answers ``count(*)`` and ``max()`` from block statistics, so a damaged
  block goes unnoticed until its data is read. Before rows are appended to a live table, every block
  of it is read (DuckDB checks each block's checksum). A live file that cannot be opened or read is
  moved aside to ``<file>.corrupt`` and the refresh rebuilds the dataset from its source, with a
  warning (an append becomes a full load).
* **Disk full** is transient (the refresh is retried once space is freed); its message names the
  file system and the space needed. **Out of memory** is terminal; its message names the setting.
* **Database invalidated.** A fatal error in a write (DuckDB's ``FatalException``: a checkpoint
  that ran out of disk or memory after the commit reached the WAL) invalidates the database: every
  later statement on it fails. The write is reported as failed, so its WAL is dropped (the file
  is its last checkpoint, the previous data) and the next refresh opens the file afresh. Out of
  memory stays terminal (naming the setting); any other cause is transient.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from airflow_provider_accel.accelerator.layout import STAGING_MARK, atomic_replace, fsync_path, wal_file
from airflow_provider_accel.accelerator.resources import DATASET_PARAM, MIB
from airflow_provider_accel.exceptions import RefreshError, TerminalRefreshError, TransientRefreshError

if TYPE_CHECKING:
    from airflow_provider_accel.spicepod.model import Dataset

log = logging.getLogger(__name__)

CORRUPT_SUFFIX = ".corrupt"
#: Message fragments of DuckDB errors that mean the file itself is damaged (DuckDB raises several
#: exception types for these: IOException, SerializationException, InternalException, plain Error).
_CORRUPTION_MARKS = (
    "corrupt database file",
    "does not match stored checksum",
    "is not a valid duckdb database file",
    "could not read enough bytes",
    "bitpacking",
    "failed to deserialize",
    "serialization error",
    "database has been invalidated",
    "internal error",
)


class CommitNotVerifiedError(TransientRefreshError):
    """The live table does not hold what was staged after a commit; the previous data was kept."""


class CorruptFileError(TransientRefreshError):
    """The live file cannot be opened or read consistently; the next refresh rebuilds it."""


class DiskFullError(TransientRefreshError):
    """The file system of the dataset's file filled up; retried once space is freed."""


class EngineOutOfMemoryError(TerminalRefreshError):
    """DuckDB ran out of its memory limit and could not spill; raise the limit or free spill space."""


class DatabaseInvalidatedError(TransientRefreshError):
    """A fatal DuckDB error invalidated the database during a write; the write was undone, retried."""


#: What DuckDB says when it cannot get memory (the type is ``FatalException`` inside a checkpoint).
_OUT_OF_MEMORY_MARKS = (
    "out of memory",
    "failed to pin block",
    "could not allocate block",
    "failed to allocate data",
    "failed to offload data block",
)


def is_invalidation(err: BaseException | None) -> bool:
    """DuckDB invalidated the database: a fatal error (e.g. a failed checkpoint), or a later statement."""
    if isinstance(err, duckdb.FatalException):
        return True
    return isinstance(err, duckdb.Error) and "database has been invalidated" in str(err).casefold()


def is_corruption(err: BaseException | None) -> bool:
    if not isinstance(err, duckdb.Error):
        return False
    text = str(err).casefold()
    return any(mark in text for mark in _CORRUPTION_MARKS)


def is_disk_full(err: BaseException | None) -> bool:
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(err).casefold()
    return isinstance(err, duckdb.Error) and (
        "no space left on device" in text
        or "disk quota exceeded" in text
        or "max_temp_directory_size" in text
    )


def _mount_point(path: Path) -> Path:
    path = path.resolve()
    while not path.exists():
        path = path.parent
    while not os.path.ismount(path):
        path = path.parent
    return path


def disk_full_message(dataset: str, doing: str, path: Path, err: BaseException, needed_bytes: int) -> str:
    """Which file system filled up, how much is free, and how much the refresh needs."""
    mount = _mount_point(path.parent)
    usage = shutil.disk_usage(mount)
    return (
        f"Dataset {dataset}: {doing} failed: the file system {mount} (holding {path}) is full: "
        f"{usage.free // MIB:,} MiB free of {usage.total // MIB:,} MiB; this refresh needs about "
        f"{max(1, needed_bytes // MIB):,} MiB free there. The previous data is intact and the refresh "
        f"will be retried; free space or move [accel] data_dir. ({err})"
    )


def classify(
    err: BaseException, dataset: str, doing: str, path: Path, *, needed_bytes: int = 0
) -> RefreshError | None:
    """A disk-full, out-of-memory or corruption error classified with its evidence; ``None`` otherwise."""
    if is_disk_full(err):
        needed = needed_bytes or (path.stat().st_size if path.exists() else 0) * 2
        message = disk_full_message(dataset, doing, path, err, needed)
        discard_unfinished_wal(path, dataset)
        return DiskFullError(message, dataset=dataset)
    invalidated = is_invalidation(err)
    if invalidated:
        discard_unfinished_wal(path, dataset)  # committed to the WAL, reported as failed: undo it
    if isinstance(err, duckdb.OutOfMemoryException) or (
        invalidated and any(mark in str(err).casefold() for mark in _OUT_OF_MEMORY_MARKS)
    ):
        return EngineOutOfMemoryError(
            f"Dataset {dataset}: {doing} ran out of memory: {err}. Raise the memory limit: "
            f"acceleration.params.{DATASET_PARAM} of the dataset, or memory_limit in the accelerator "
            "connection's extra; or give DuckDB room to spill (temp_directory on a disk with free space). "
            "The previous data is intact.",
            dataset=dataset,
        )
    if invalidated:
        return DatabaseInvalidatedError(
            f"Dataset {dataset}: {doing}: DuckDB invalidated the database {path} after a fatal error: "
            f"{err}. The write was undone (its write-ahead log dropped), the previous data is intact, "
            "and the refresh will be retried with the file opened afresh.",
            dataset=dataset,
        )
    if is_corruption(err):
        return CorruptFileError(
            f"Dataset {dataset}: {doing}: the DuckDB file {path} is corrupt: {err}. The next refresh "
            "moves it aside and rebuilds it from the source.",
            dataset=dataset,
        )
    return None


def discard_unfinished_wal(path: Path, dataset: str) -> None:
    """Drop the WAL a failed in-place write left (disk full, or a fatal error; call holding the writer lock).

    The write committed to the WAL but its checkpoint could not be written, and the refresh reports
    a failure: keeping the WAL would let the next open apply rows (or deletions) that were reported
    as not done. Without it the file is its last checkpoint, the previous data, and the retry
    writes the change again.
    """
    wal = wal_file(path)
    if wal.exists():
        wal.unlink()
        fsync_path(path.parent)
        log.warning(
            "Dataset %s: dropped the write-ahead log %s of a write that could not be checkpointed (disk "
            "full, or a fatal error that invalidated the database); %s holds its previous data.",
            dataset,
            wal,
            path,
        )


def staged_size(staging: Path) -> int:
    """Bytes a staging file (and its WAL) reached: the space a retry needs at least."""
    total = 0
    for candidate in (staging, wal_file(staging)):
        with contextlib.suppress(OSError):
            total += candidate.stat().st_size
    return total


# -- corruption ----------------------------------------------------------------------------------


def read_every_block(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Read every column of ``table`` (quoted) so that DuckDB checks each block's checksum."""
    columns = [row[0] for row in con.execute(f"DESCRIBE {table}").fetchall()]
    if not columns:
        return
    args = ", ".join('"' + c.replace('"', '""') + '"' for c in columns)
    con.execute(f"SELECT bit_xor(hash({args})) FROM {table}").fetchall()


def quarantine(path: Path, dataset: str, reason: BaseException) -> Path:
    """Move a corrupt live file (and its WAL) aside, replacing an older quarantined copy."""
    target = path.with_name(path.name + CORRUPT_SUFFIX)
    os.replace(path, target)
    with contextlib.suppress(FileNotFoundError):
        os.replace(wal_file(path), wal_file(target))
    fsync_path(path.parent)
    log.warning(
        "Dataset %s: the DuckDB file %s is corrupt (%s); moved it to %s and rebuilding the dataset "
        "from its source with a full load.",
        dataset,
        path,
        reason,
        target,
    )
    return target


# -- commit verification -------------------------------------------------------------------------

Stats = tuple[int, str | None]  # (row count, watermark)


def _mismatch(
    dataset: str, expected: Stats, actual: Stats | BaseException, kept: str
) -> CommitNotVerifiedError:
    got = f"error {actual}" if isinstance(actual, BaseException) else describe_stats(actual)
    return CommitNotVerifiedError(
        f"Dataset {dataset}: the commit could not be verified: staged {expected[0]:,} rows, watermark "
        f"{expected[1]}; the live table holds {got}. {kept} The refresh will be retried.",
        dataset=dataset,
    )


def verify_commit(dataset: Dataset, path: Path, expected: Stats, read_stats: Callable[[Path], Stats]) -> None:
    """Check that the live file (opened afresh) holds ``expected``; raise with the evidence if not."""
    try:
        actual: Stats | BaseException = read_stats(path)
    except (duckdb.Error, RefreshError) as err:
        actual = err
    if actual != expected:
        kept = "The file was written in place; no success was reported."
        raise _mismatch(dataset.name, expected, actual, kept)


def replace_verified(
    staging: Path,
    path: Path,
    dataset: Dataset,
    expected: Stats,
    read_stats: Callable[[Path], Stats],
    replace: Callable[[Path, Path], None] = atomic_replace,
) -> None:
    """Swap ``staging`` in as the live file, verify it, and put the previous file back on a mismatch."""
    previous = path.with_name(f"{path.name}{STAGING_MARK}previous-{os.getpid()}")
    had_previous = path.exists()
    if had_previous:
        with contextlib.suppress(FileNotFoundError):
            previous.unlink()
        os.link(path, previous)  # a second name for the old data: no copy, no extra space
    try:
        replace(staging, path)
        try:
            actual: Stats | BaseException = read_stats(path)
        except (duckdb.Error, RefreshError) as err:
            actual = err
        if actual != expected:
            if had_previous:
                atomic_replace(previous, path)
                kept = "The previous file was put back."
            else:
                os.unlink(path)
                kept = "The unverified file was removed."
            raise _mismatch(dataset.name, expected, actual, kept)
    finally:
        with contextlib.suppress(FileNotFoundError):
            previous.unlink()


def describe_stats(stats: Any) -> str:
    return f"{stats[0]:,} rows, watermark {stats[1]}"


__all__ = [
    "CommitNotVerifiedError",
    "CorruptFileError",
    "DatabaseInvalidatedError",
    "DiskFullError",
    "EngineOutOfMemoryError",
    "classify",
    "is_invalidation",
    "quarantine",
    "read_every_block",
    "replace_verified",
    "verify_commit",
]


# -- hook glue (kept here so that hook.py carries only call lines) -------------------------------


def live_stats(hook: Any, dataset: Dataset) -> Callable[[Path], Stats]:
    """A reader of the live table's (row count, watermark) through a fresh read-only connection."""

    def read(path: Path) -> Stats:
        con = hook._connect_live(path, read_only=True, dataset=dataset.name)
        try:
            stats: Stats = hook.table_stats(con, dataset)
            return stats
        finally:
            con.close()

    return read


def inspect_live_checked(hook: Any, path: Path, dataset: Dataset, *, append: bool, verified: bool) -> Any:
    """The hook's view of the live file, with a corrupt file moved aside (then: an empty state).

    For an append every block of the live table is read too, since its rows are kept, unless the
    file is ``verified``: unchanged since the provider last wrote or read it whole
    (:mod:`.verified`), so that an append's cost does not grow with the table it appends to.
    """
    from airflow_provider_accel.accelerator.hook import LiveState

    try:
        live = hook._inspect_live(path, dataset, want_watermark=append, read_blocks=append and not verified)
        return live
    except (RefreshError, duckdb.Error) as err:
        cause = err if isinstance(err, duckdb.Error) else err.__cause__
        if not is_corruption(cause):
            raise
        quarantine(path, dataset.name, cause)  # type: ignore[arg-type]
        if append:
            log.warning("Dataset %s: append falls back to a full load after the corrupt file.", dataset.name)
        return LiveState()
