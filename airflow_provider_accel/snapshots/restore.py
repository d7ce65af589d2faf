"""Bringing a snapshot onto this host: bootstrap (no or corrupt local file, or a rollback) and replicas.

A snapshot is downloaded to a staging file next to the live file, its SHA-256 compared with the
pointer's, its engine and table checked; only then is it swapped in by an atomic rename under the
file's writer lock, exactly as a full refresh swaps its staging file in. So readers see the old file
or the new one, complete, and a refused or interrupted download leaves the live file untouched.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_accel.accelerator import schema_change
from airflow_provider_accel.accelerator.layout import atomic_replace, staging_file, wal_file, writer_lock
from airflow_provider_accel.exceptions import RefreshError, TerminalRefreshError, TransientRefreshError
from airflow_provider_accel.snapshots import files
from airflow_provider_accel.snapshots.layout import LocalState
from airflow_provider_accel.snapshots.pointer import Pointer, SnapshotEntry, read_pointer
from airflow_provider_accel.snapshots.store import SnapshotStore, removing
from airflow_provider_accel.spicepod.snapshots import BootstrapOnFailure, snapshot_settings

if TYPE_CHECKING:
    from airflow_provider_accel.spicepod.model import Dataset

log = logging.getLogger(__name__)


@dataclass
class RestoreOutcome:
    status: str  # "restored", "unchanged", "skipped", "failed", "none"
    snapshot_id: int | None = None
    rows: int = 0
    size_bytes: int = 0
    duration_ms: int = 0
    watermark: str | None = None
    reason: str | None = None

    def summary(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def schema_refusal(dataset: Dataset, old: list[list[str]], new: list[list[str]]) -> str | None:
    """Why a snapshot with columns ``new`` may not replace local columns ``old``; ``None``: it may.

    The same ``on_schema_change`` decision as a full refresh's (:mod:`~.accelerator.schema_change`):
    a snapshot replaces the whole table, as a rebuild does.
    """
    diff = schema_change.compare([(c, t) for c, t in old], [(c, t) for c, t in new])
    advice = schema_change.rebuild_refusal(dataset, diff)
    if advice is None:
        return None
    return (
        f"the snapshot's columns differ from the replica's ({diff.describe()}); on_schema_change is "
        f"{dataset.on_schema_change.value}. {advice} Or roll the pointer back"
    )


def install(
    dataset: Dataset,
    live: Path,
    entry: SnapshotEntry,
    pointer: Pointer,
    store: SnapshotStore,
    *,
    lock_timeout: float,
    role: str,
    check_schema: Callable[[list[list[str]]], str | None] | None = None,
) -> RestoreOutcome:
    """Download ``entry``, verify it, and atomically make it the live file."""
    started = time.monotonic()
    if entry.engine != "duckdb":
        raise TerminalRefreshError(
            f"Dataset {dataset.name}: snapshot {entry.id} was written by engine {entry.engine}, not duckdb; "
            "it is refused. Roll back to a duckdb snapshot.",
            dataset=dataset.name,
        )
    live.parent.mkdir(parents=True, exist_ok=True)
    with removing(staging_file(live)) as staging:
        digest, size = store.download(entry.key, staging)
        if digest != entry.hex_digest or size != entry.size_bytes:
            raise TerminalRefreshError(
                f"Dataset {dataset.name}: snapshot {entry.id} ({store.url(entry.key)}) is refused: "
                f"its checksum "
                f"is sha256:{digest[:16]}.. ({size} bytes), the pointer says {entry.checksum[:23]}.. "
                f"({entry.size_bytes} bytes). The object is corrupt or was replaced; the local data is kept. "
                "Roll back to another snapshot, or let the writer publish a new one.",
                dataset=dataset.name,
            )
        facts = files.inspect(staging, dataset.name)
        if check_schema is not None and (refusal := check_schema(facts.schema)):
            raise TerminalRefreshError(
                f"Dataset {dataset.name}: snapshot {entry.id} is refused: {refusal}. The local data is kept.",
                dataset=dataset.name,
            )
        with writer_lock(live, lock_timeout, dataset=dataset.name):
            # A WAL left by the previous file must never be replayed into the new one.
            wal_file(live).unlink(missing_ok=True)
            atomic_replace(staging, live)
            LocalState(entry.id, entry.checksum, pointer.generation, role).write(live)
    return RestoreOutcome(
        "restored",
        entry.id,
        rows=facts.rows,
        size_bytes=size,
        duration_ms=round((time.monotonic() - started) * 1000),
        watermark=entry.watermark,
    )


def _set_aside(live: Path, why: str, dataset: str) -> None:
    """Move a corrupt live file out of the way (kept for inspection), with its WAL and local state."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    aside = live.with_name(f"{live.name}.corrupt-{stamp}")
    live.rename(aside)
    wal_file(live).unlink(missing_ok=True)
    LocalState.clear(live)
    log.warning("Dataset %s: %s is corrupt (%s); moved to %s", dataset, live, why, aside)


def bootstrap(dataset: Dataset, live: Path, *, lock_timeout: float) -> RestoreOutcome:
    """Before a refresh: restore the newest snapshot when the local file is missing, corrupt or rolled back.

    Follows ``snapshots.bootstrap_on_failure_behavior`` when the restore fails: ``warn`` logs and lets the
    refresh load from the source, ``retry`` fails the run as transient (Airflow retries it), ``fallback``
    tries older snapshots, newest first, and then warns.
    """
    settings = snapshot_settings(dataset)
    if not settings.active or settings.store is None:
        return RestoreOutcome("skipped", reason="snapshots are not enabled for this dataset")
    reason: str | None = None
    if not live.exists():
        reason = "no local file"
    elif why := files.is_corrupt(live, dataset.name):
        reason = f"the local file is corrupt ({why})"
    if reason is None and not settings.creates:
        return RestoreOutcome("skipped", reason="the local file is in place")
    if reason is not None and not settings.bootstraps:
        if reason != "no local file":
            _set_aside(live, reason, dataset.name)
        return RestoreOutcome("skipped", reason=f"{reason}; snapshots is create_only, so no bootstrap")
    store = SnapshotStore(settings.store, dataset.name)
    try:
        pointer = read_pointer(store, dataset.name)
    except RefreshError as err:
        return _on_failure(dataset, live, settings.store.bootstrap_on_failure_behavior, err, reason)
    if pointer is None or pointer.current_entry is None:
        if reason is not None and reason != "no local file":
            _set_aside(live, reason, dataset.name)
        return RestoreOutcome("none", reason="no snapshot has been published yet")
    if reason is None:
        # A writer whose file is in place: restore only when the pointer was moved by someone else
        # (a rollback) since this host last published or restored.
        state = LocalState.read(live)
        if state is None or pointer.generation <= state.generation or pointer.current == state.snapshot_id:
            return RestoreOutcome("skipped", reason="the local file is the current snapshot's or newer")
        reason = f"the pointer was moved to snapshot {pointer.current} (rolled back)"
    log.info("Dataset %s: %s; restoring from snapshots at %s", dataset.name, reason, store.location)
    if reason.startswith("the local file is corrupt"):
        _set_aside(live, reason, dataset.name)
    behavior = settings.store.bootstrap_on_failure_behavior
    candidates = [pointer.current_entry]
    if behavior is BootstrapOnFailure.FALLBACK:
        candidates += [e for e in pointer.newest_first() if e.id != pointer.current]
    last_error: RefreshError | None = None
    for entry in candidates:
        assert entry is not None
        try:
            outcome = install(
                dataset, live, entry, pointer, store, lock_timeout=lock_timeout, role="bootstrapped"
            )
        except RefreshError as err:
            last_error = err
            log.warning("Dataset %s: restoring snapshot %s failed: %s", dataset.name, entry.id, err)
            if behavior is BootstrapOnFailure.RETRY:
                break
            continue
        outcome.reason = reason
        log.info(
            "Dataset %s: restored snapshot %s (%s rows, %s bytes) in %sms",
            dataset.name,
            entry.id,
            f"{outcome.rows:,}",
            f"{outcome.size_bytes:,}",
            outcome.duration_ms,
        )
        return outcome
    assert last_error is not None
    return _on_failure(dataset, live, behavior, last_error, reason)


def _on_failure(
    dataset: Dataset, live: Path, behavior: BootstrapOnFailure, err: RefreshError, reason: str | None
) -> RestoreOutcome:
    if behavior is BootstrapOnFailure.RETRY:
        raise TransientRefreshError(
            f"Dataset {dataset.name}: bootstrapping from the newest snapshot failed ({err}); "
            "bootstrap_on_failure_behavior is retry, so the run is retried.",
            dataset=dataset.name,
        ) from err
    if reason and reason.startswith("the local file is corrupt") and live.exists():
        _set_aside(live, reason, dataset.name)
    log.warning(
        "Dataset %s: bootstrapping from snapshots failed (%s); continuing with a refresh from the source.",
        dataset.name,
        err,
    )
    return RestoreOutcome("failed", reason=str(err))
