"""A cancelled refresh leaves no staging file, although its process is killed inside DuckDB.

A refresh is cancelled (``DELETE .../refresh/{dag_run_id}``, ``on_demand_refresh: replace``, or
Airflow's "mark failed") by Airflow's supervisor: SIGTERM, then SIGKILL 5 s later. Python runs a
signal handler only between bytecodes, and a refresh spends its time inside one DuckDB call, so
the task runner's SIGTERM handler (and the accelerator's ``finally`` that deletes the staging file)
would not run before the SIGKILL: the staging file would stay until the next refresh of the file.

:func:`discard_staging_on_termination` closes that gap with the interpreter's wakeup fd, which the
C-level signal handler writes at once, whatever the main thread is doing: a watcher thread sees
SIGTERM and deletes this process's staging files of the dataset file (``<file>.staging-<pid>-*``).
That is safe at any point: the live file is never touched, and a refresh whose staging file is
gone can only fail (its swap or copy finds no file), which is what a cancelled refresh does.

DuckDB, still loading in the main thread, would go on writing and re-create the staging file's WAL
by name until the supervisor's SIGKILL. So if the refresh has not ended :data:`TERMINATION_GRACE`
after the SIGTERM (a handler between bytecodes ends it sooner), the watcher deletes the staging
files once more and ends the process itself with SIGKILL, as the supervisor would 5 s later: a
SIGKILL at any moment leaves the before or the after state (the crash trials prove it).

The same holds for a SQLite dataset (its staging files sit next to its ``.sqlite`` file). A PostgreSQL
refresh stages inside its transaction: a killed process's connection drops, the server rolls the
transaction back, and no staging table stays (``path`` is ``None``: nothing to guard).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

from airflow_provider_accel.accelerator.layout import STAGING_MARK

log = logging.getLogger(__name__)

#: Seconds a terminated refresh may take to end by itself (its Python SIGTERM handler) before the
#: guard ends it: a refresh inside one DuckDB call would only be SIGKILLed by the supervisor later.
TERMINATION_GRACE = 0.5


def _own_staging_files(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f"{path.name}{STAGING_MARK}{os.getpid()}-*"))


def discard_own_staging(path: Path) -> list[Path]:
    """Delete the staging files (and their WALs) this process made for the dataset file ``path``."""
    removed = []
    for staging in _own_staging_files(path):
        with contextlib.suppress(FileNotFoundError):
            staging.unlink()
            removed.append(staging)
    return removed


@contextlib.contextmanager
def discard_staging_on_termination(path: Path | None, *, end_if_stuck: bool = True) -> Iterator[None]:
    """While the block runs, SIGTERM deletes this process's staging files of ``path`` at once.

    ``end_if_stuck``: if the block has not ended :data:`TERMINATION_GRACE` after the SIGTERM, end the
    process with SIGKILL (a refresh task's case; tests of the guard in their own process turn it off).
    """
    if path is None or threading.current_thread() is not threading.main_thread():
        yield  # the wakeup fd belongs to the main thread; nothing to guard elsewhere
        return
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    try:
        previous = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    except ValueError:  # not allowed here (e.g. an embedded interpreter): no guard
        os.close(read_fd)
        os.close(write_fd)
        yield
        return
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            data = os.read(read_fd, 64)
            if not data:
                return
            if previous != -1:  # whoever had the wakeup fd before still gets the signals
                with contextlib.suppress(OSError):
                    os.write(previous, data)
            if signal.SIGTERM in data and not stop.is_set():
                removed = discard_own_staging(path)
                log.warning(
                    "Refresh terminated (cancelled or killed): discarded %d staging file(s) of %s; "
                    "the live data is unchanged.",
                    len(removed),
                    path,
                )
                if end_if_stuck and not stop.wait(TERMINATION_GRACE):  # inside the engine: it writes on
                    discard_own_staging(path)
                    os.kill(os.getpid(), signal.SIGKILL)

    watcher = threading.Thread(target=watch, name="accel-staging-guard", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        signal.set_wakeup_fd(previous)
        os.close(write_fd)  # the watcher's read returns b"" and it ends
        watcher.join(timeout=5)
        os.close(read_fd)
