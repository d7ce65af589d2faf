"""Where a dataset's DuckDB file lives, and the crash-safe layout around it.

For a dataset file ``taxi.duckdb`` the accelerator keeps, in the same directory:

* ``taxi.duckdb`` — the live file readers open (read-only). It is only ever *replaced* by an atomic
  ``rename`` of a complete, checkpointed file, or changed inside one DuckDB transaction.
* ``taxi.duckdb.lock`` — an ``flock`` held by the one writer of the file, across processes.
* ``taxi.duckdb.intent`` — an ``flock`` a writer holds exclusively while it opens and writes the live
  file in place; readers take it shared, only while they *open* the file (:func:`read_turn`). So new
  readers queue behind a waiting writer instead of starving it, and the writer waits for at most
  the reads already running.
* ``taxi.duckdb.staging-<pid>-<token>`` — the file a refresh builds before it is swapped in or
  copied into the live file. A crash leaves at most such files behind; the next writer (holding the
  lock, so no refresh is using them) deletes them.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import glob
import json
import logging
import os
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from airflow_provider_accel import config
from airflow_provider_accel.exceptions import SourceLockedError

if TYPE_CHECKING:
    from airflow_provider_accel.spicepod.model import Dataset

log = logging.getLogger(__name__)

_UNSAFE_FILE_CHARS = re.compile(r"[^A-Za-z0-9_.-]")
STAGING_MARK = ".staging-"


def dataset_file(dataset: Dataset, data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The DuckDB file that holds ``dataset``: ``params.duckdb_file`` if set, else one per dataset.

    A relative ``duckdb_file`` is taken relative to the data directory, so that every worker that
    mounts the data directory at the same path agrees on it.
    """
    base = Path(data_dir) if data_dir is not None else config.data_dir()
    configured = dataset.acceleration.duckdb_file if dataset.acceleration else None
    if configured:
        path = Path(os.path.expanduser(configured))
        return path if path.is_absolute() else base / path
    return base / f"{_UNSAFE_FILE_CHARS.sub('_', dataset.name.lower())}.duckdb"


def wal_file(path: Path) -> Path:
    return path.with_name(path.name + ".wal")


def staging_file(path: Path) -> Path:
    """A fresh staging path next to ``path`` (same file system, so ``rename`` is atomic)."""
    return path.with_name(f"{path.name}{STAGING_MARK}{os.getpid()}-{secrets.token_hex(4)}")


def remove_file(path: Path) -> None:
    """Remove a DuckDB file and its WAL if they exist."""
    for candidate in (path, wal_file(path)):
        with contextlib.suppress(FileNotFoundError):
            candidate.unlink()


def remove_staging_leftovers(path: Path) -> list[Path]:
    """Delete staging files a crashed refresh left next to ``path``. Call only while holding the lock."""
    removed = []
    for leftover in path.parent.glob(f"{glob.escape(path.name)}{STAGING_MARK}*"):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()
            removed.append(leftover)
    if removed:
        log.info("Removed %s staging file(s) left by an interrupted refresh of %s", len(removed), path)
    return removed


def replace_json(target: Path, data: object) -> None:
    """Write ``data`` as JSON to ``target`` through a temporary file renamed over it (readers see
    the old record or the new one). On an error nothing is left behind and the error is raised."""
    temporary = target.with_name(target.name + ".tmp")
    try:
        temporary.write_text(json.dumps(data, sort_keys=True))
        temporary.replace(target)
    except OSError:
        temporary.unlink(missing_ok=True)
        raise


def fsync_path(path: Path) -> None:
    """Flush a file (or directory entry) to stable storage so a rename survives a power cut."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_replace(staging: Path, live: Path) -> None:
    """Swap a complete staging file in as the live file, atomically and durably."""
    fsync_path(staging)
    os.replace(staging, live)
    fsync_path(live.parent)


@contextlib.contextmanager
def writer_lock(
    path: Path, timeout: float | None = None, poll: float = 0.05, *, dataset: str | None = None
) -> Iterator[None]:
    """Hold the single-writer lock of a DuckDB file, across processes on this host.

    Waits up to ``timeout`` seconds (``[accel] lock_timeout``), then raises
    :class:`SourceLockedError`, a transient error, so the refresh is retried later.
    """
    timeout = config.lock_timeout() if timeout is None else timeout
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.with_name(path.name + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as err:
                if err.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    who = f"Dataset {dataset}: a" if dataset else "A"
                    raise SourceLockedError(
                        f"{who}nother refresh has been writing {path} for more than {timeout:g}s; "
                        "this refresh will be retried. Raise [accel] lock_timeout if refreshes of "
                        "datasets sharing this file take longer.",
                        dataset=dataset,
                    ) from err
                time.sleep(poll)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def intent_file(path: Path) -> Path:
    return path.with_name(path.name + ".intent")


def _flock_until(fd: int, operation: int, deadline: float, poll: float) -> bool:
    """Take an flock, polling until ``deadline``; whether it was taken."""
    while True:
        try:
            fcntl.flock(fd, operation | fcntl.LOCK_NB)
            return True
        except OSError as err:
            if err.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            if time.monotonic() >= deadline:
                return False
            time.sleep(poll)


@contextlib.contextmanager
def write_intent(path: Path, timeout: float, *, dataset: str | None = None) -> Iterator[None]:
    """Hold the file's write intent (exclusive): new readers wait until the in-place write is done."""
    fd = os.open(intent_file(path), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if not _flock_until(fd, fcntl.LOCK_EX, time.monotonic() + timeout, 0.002):
            raise SourceLockedError(
                f"Readers kept {path} busy for more than {timeout:g}s; the refresh will be retried.",
                dataset=dataset,
            )
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def read_turn(path: Path, timeout: float) -> Iterator[bool]:
    """Wait (up to ``timeout``) while a writer announces an in-place write; yields whether it waited in vain.

    Hold it only around opening the file. A file without an intent file (never written in place, or
    a read-only directory) is not waited for.
    """
    try:
        fd = os.open(intent_file(path), os.O_RDONLY)
    except OSError:
        yield True
        return
    try:
        yield _flock_until(fd, fcntl.LOCK_SH, time.monotonic() + timeout, 0.002)
    finally:
        os.close(fd)
