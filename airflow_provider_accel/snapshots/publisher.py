"""Publishing a dataset's file as a snapshot after a successful refresh.

Order, so that a reader never meets a pointer to a partial or missing object:

1. copy the live file (under its writer lock) to a private staging file;
2. skip when ``snapshots_creation_policy: on_change`` and the rows equal the current snapshot's, or when
   ``snapshots_trigger: time_interval`` and the current snapshot is younger than the threshold;
3. upload the object under Spice's layout, then read it back and compare its SHA-256 with the local one;
4. re-read the pointer: refuse if another writer owns the dataset or the generation moved meanwhile;
5. write the pointer (the new snapshot current), then delete the snapshots past the retention.

A failure anywhere before 5 leaves the pointer as it was (at most an orphan object, deleted when
possible); a crash after 5 leaves at most old objects that the next publish cleans up.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_accel.exceptions import TerminalRefreshError, TransientRefreshError
from airflow_provider_accel.snapshots import files
from airflow_provider_accel.snapshots.layout import LocalState, snapshot_key
from airflow_provider_accel.snapshots.pointer import Pointer, SnapshotEntry, read_pointer, write_pointer
from airflow_provider_accel.snapshots.store import SnapshotStore, removing
from airflow_provider_accel.spicepod.snapshots import (
    SnapshotsCreationPolicy,
    SnapshotsTrigger,
    snapshot_settings,
)

if TYPE_CHECKING:
    from airflow_provider_accel.spicepod.model import Dataset

log = logging.getLogger(__name__)


@dataclass
class PublishOutcome:
    """What publishing did, for the task log, the refresh summary and the status route."""

    status: str  # "published", "skipped" or "failed"
    snapshot_id: int | None = None
    location: str | None = None
    checksum: str | None = None
    size_bytes: int | None = None
    duration_ms: int | None = None
    reason: str | None = None
    deleted: list[int] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in (None, [])}


def _now_iso(now: dt.datetime) -> str:
    return now.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def publish(
    dataset: Dataset,
    live: Path,
    *,
    lock_timeout: float,
    watermark: str | None = None,
    dag_run_id: str | None = None,
    now: dt.datetime | None = None,
    store: SnapshotStore | None = None,
) -> PublishOutcome:
    """Publish ``live`` as the dataset's newest snapshot; raises on failure."""
    settings = snapshot_settings(dataset)
    assert settings.store is not None
    started = time.monotonic()
    now = now or dt.datetime.now(dt.UTC)
    store = store or SnapshotStore(settings.store, dataset.name)
    me = files.writer_id()

    pointer = read_pointer(store, dataset.name) or Pointer(dataset=dataset.name)
    if pointer.writer and pointer.writer != me:
        raise TerminalRefreshError(
            f"Dataset {dataset.name}: snapshots at {store.location} are published by "
            f"{pointer.writer}, not by "
            f"this deployment ({me}); one writer per dataset. Set acceleration.snapshots to bootstrap_only "
            "here, or, to move the writer, set [accel] snapshot_writer_id to the old writer's id.",
            dataset=dataset.name,
        )
    current = pointer.current_entry
    if (
        settings.trigger is SnapshotsTrigger.TIME_INTERVAL
        and current is not None
        and settings.trigger_threshold
    ):
        age = now - dt.datetime.fromisoformat(current.timestamp.replace("Z", "+00:00"))
        if age < settings.trigger_threshold:
            return PublishOutcome(
                "skipped",
                current.id,
                reason=f"snapshots_trigger time_interval: the current snapshot is {age} old",
            )

    with removing(files.copy_live(live, dataset.name, lock_timeout)) as copy:
        facts = files.inspect(copy, dataset.name)
        if (
            settings.creation_policy is SnapshotsCreationPolicy.ON_CHANGE
            and current is not None
            and current.fingerprint == facts.fingerprint
            and current.schema == facts.schema
        ):
            return PublishOutcome(
                "skipped",
                current.id,
                location=store.url(current.key),
                reason="snapshots_creation_policy on_change: the data did not change since the current "
                "snapshot",
            )
        upload_path = files.compact(copy, dataset.name) if settings.compaction else copy
        with removing(upload_path):
            key = snapshot_key(dataset.name, now, taken={e.key for e in pointer.snapshots})
            local_hex, size = store.upload(upload_path, key)
        stored_hex, stored_size = store.checksum(key)
        if stored_hex != local_hex or stored_size != size:
            store.delete(key)
            raise TransientRefreshError(
                f"Dataset {dataset.name}: the uploaded snapshot {store.url(key)} does not read back "
                "as written "
                f"(sha256 {stored_hex[:12]}.., {stored_size} bytes; "
                f"expected {local_hex[:12]}.., {size} bytes); "
                "the pointer was not moved and the upload is retried at the next refresh.",
                dataset=dataset.name,
            )

    latest = read_pointer(store, dataset.name) or Pointer(dataset=dataset.name)
    if latest.generation != pointer.generation:
        store.delete(key)
        raise TransientRefreshError(
            f"Dataset {dataset.name}: the snapshot pointer moved while this snapshot was "
            f"uploaded (generation "
            f"{pointer.generation} -> {latest.generation}: a rollback or another writer); this snapshot was "
            "discarded and the next refresh publishes again.",
            dataset=dataset.name,
        )
    entry = SnapshotEntry(
        id=latest.next_id,
        key=key,
        timestamp=_now_iso(now),
        engine="duckdb",
        size_bytes=size,
        rows=facts.rows,
        checksum=f"sha256:{local_hex}",
        schema=facts.schema,
        fingerprint=facts.fingerprint,
        watermark=watermark,
        dag_run_id=dag_run_id,
        writer=me,
    )
    kept, dropped = _retain([*latest.snapshots, entry], entry.id, now)
    moved = latest.bumped(current=entry.id, writer=me, updated_at=entry.timestamp, snapshots=tuple(kept))
    write_pointer(store, moved)
    LocalState(entry.id, entry.checksum, moved.generation, "published").write(live)
    for old in dropped:
        try:
            store.delete(old.key)
        except (TransientRefreshError, TerminalRefreshError) as err:
            log.warning("Dataset %s: could not delete old snapshot %s: %s", dataset.name, old.key, err)
    return PublishOutcome(
        "published",
        entry.id,
        location=store.url(key),
        checksum=entry.checksum,
        size_bytes=size,
        duration_ms=round((time.monotonic() - started) * 1000),
        deleted=[e.id for e in dropped],
    )


def _retain(
    entries: list[SnapshotEntry], current: int, now: dt.datetime
) -> tuple[list[SnapshotEntry], list[SnapshotEntry]]:
    """The snapshots kept (the newest ``[accel] snapshot_retention_count``, not too old), and dropped."""
    keep_count = files.retention_count()
    max_days = files.retention_days()
    newest_first = sorted(entries, key=lambda e: e.id, reverse=True)
    kept, dropped = [], []
    for index, entry in enumerate(newest_first):
        too_old = (
            max_days is not None
            and (now - dt.datetime.fromisoformat(entry.timestamp.replace("Z", "+00:00"))).total_seconds()
            > max_days * 86400
        )
        if entry.id == current or (index < keep_count and not too_old):
            kept.append(entry)
        else:
            dropped.append(entry)
    return sorted(kept, key=lambda e: e.id), dropped
