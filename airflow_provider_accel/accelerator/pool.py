"""The refresh pool: Spice's ``runtime.dataset_load_parallelism`` as an Airflow pool.

Every refresh and retention task runs in the pool :data:`POOL_NAME`, so at most that many refreshes
run at once across the deployment. Airflow never creates a pool by itself, and the scheduler
silently never queues a task whose pool is missing, so the provider creates it: a plugin listener's
``on_starting`` hook runs in the scheduler when its job starts, before the scheduler's loop can
queue any task (the dag-processor has no database access in Airflow 3; the scheduler has). The pool's
slots are set from the spicepod each time the scheduler starts, like Spice reading ``runtime`` at
start-up; a changed value takes effect on the scheduler's next start.

This module is imported at parse time and by the plugin in every Airflow process: keep it light.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

from airflow.listeners import hookimpl

log = logging.getLogger(__name__)

POOL_NAME = "accel_refresh"
#: Spice loads every dataset at once by default; unbounded loads took hosts down (Spice #5669), so
#: the provider's default is a small fixed number of refreshes at once.
DEFAULT_PARALLELISM = 4
#: How long a refresh whose file is being written waits, rescheduled, before it looks again.
LOCK_RECHECK = dt.timedelta(seconds=5)
POOL_DESCRIPTION = (
    "Refreshes of accelerated datasets (airflow-provider-accel); slots = the spicepod's "
    "runtime.dataset_load_parallelism, set when the scheduler starts."
)


def refresh_parallelism(spicepod_path: str | Path | None = None) -> tuple[int, str]:
    """``runtime.dataset_load_parallelism`` of the spicepod (or the default), and where it came from."""
    import yaml

    from airflow_provider_accel import config

    path = Path(spicepod_path) if spicepod_path else config.spicepod_path()
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return DEFAULT_PARALLELISM, f"the default ({path} not readable)"
    runtime = raw.get("runtime") if isinstance(raw, dict) else None
    value = runtime.get("dataset_load_parallelism") if isinstance(runtime, dict) else None
    if value is None:
        return DEFAULT_PARALLELISM, "the default (runtime.dataset_load_parallelism not set)"
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        log.warning(
            "runtime.dataset_load_parallelism in %s is %r, not a positive integer; using %s.",
            path,
            value,
            DEFAULT_PARALLELISM,
        )
        return DEFAULT_PARALLELISM, f"the default (runtime.dataset_load_parallelism {value!r} invalid)"
    return value, f"runtime.dataset_load_parallelism in {path}"


def ensure_refresh_pool(slots: int | None = None, *, session: Any = None) -> int:
    """Create or resize the refresh pool (idempotent); returns its slots. Needs database access."""
    from airflow.models.pool import Pool
    from airflow.utils.session import create_session

    if slots is None:
        slots, why = refresh_parallelism()
    else:
        why = "the caller"
    if session is None:
        with create_session() as own:
            return ensure_refresh_pool(slots, session=own)
    existing = Pool.get_pool(POOL_NAME, session=session)
    if existing is not None and existing.slots == slots:
        return slots
    Pool.create_or_update_pool(
        POOL_NAME, slots=slots, description=POOL_DESCRIPTION, include_deferred=False, session=session
    )
    log.info("Refresh pool %s set to %s slots from %s", POOL_NAME, slots, why)
    return slots


class RefreshPoolListener:
    """Creates the refresh pool when the scheduler starts (registered by the provider's plugin)."""

    @hookimpl
    def on_starting(self, component: Any) -> None:
        # Called for every Airflow job (scheduler, triggerer, dag-processor) and in task runners; only
        # a metadata-database job may write the pool. Task runners have no database access.
        if type(component).__name__ != "Job":
            return
        try:
            ensure_refresh_pool()
        except Exception:  # never stop a scheduler from starting; the warning says what to do
            log.exception(
                "Could not create the refresh pool %s; create it with `airflow pools set %s %s ...`, "
                "or refresh tasks will not be scheduled.",
                POOL_NAME,
                POOL_NAME,
                DEFAULT_PARALLELISM,
            )


refresh_pool_listener = RefreshPoolListener()


def writer_busy(path: Path) -> bool:
    """Whether another refresh holds the writer lock of the file at ``path`` right now.

    The refresh operator asks before it starts: a busy file reschedules the task (freeing its worker
    and pool slot) instead of blocking in :func:`~.layout.writer_lock` for up to ``lock_timeout``.
    """
    import fcntl
    import os

    lock_path = path.with_name(path.name + ".lock")
    try:
        fd = os.open(lock_path, os.O_RDONLY)
    except OSError:
        return False  # no lock file yet: nobody has written this file
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # releases the probe's lock at once
    return False


def lock_wait(
    path: Path,
    lock_timeout: float,
    waiting_since: dt.datetime | None,
    *,
    dataset: str | None = None,
    now: dt.datetime | None = None,
) -> dt.datetime | None:
    """When to look again at a busy file (the task is rescheduled until then); ``None``: go ahead.

    A refresh that finds the file's writer lock held is rescheduled (``UP_FOR_RESCHEDULE``: no worker,
    no pool slot) and looks again every :data:`LOCK_RECHECK` at most, for ``lock_timeout`` in all,
    counted from ``waiting_since`` (its first reschedule). Past that deadline it raises
    :class:`~airflow_provider_accel.exceptions.SourceLockedError` at once, a transient error the retry
    policy retries later, instead of waiting for the lock inside its slot.
    """
    from airflow_provider_accel.exceptions import SourceLockedError

    if not writer_busy(path):
        return None
    now = now or dt.datetime.now(dt.UTC)
    deadline = (waiting_since or now) + dt.timedelta(seconds=lock_timeout)
    if now >= deadline:
        who = f"Dataset {dataset}: a" if dataset else "A"
        raise SourceLockedError(
            f"{who}nother refresh has been writing {path} for more than {lock_timeout:g}s (this refresh "
            "waited rescheduled, holding no worker or pool slot); it will be retried. Raise [accel] "
            "lock_timeout if refreshes of datasets sharing this file take longer.",
            dataset=dataset,
        )
    return min(now + min(LOCK_RECHECK, dt.timedelta(seconds=lock_timeout)), deadline)


__all__ = [
    "DEFAULT_PARALLELISM",
    "POOL_NAME",
    "ensure_refresh_pool",
    "lock_wait",
    "refresh_parallelism",
    "writer_busy",
]
