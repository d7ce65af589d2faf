"""Listing a dataset's snapshots and rolling its pointer back: what the API routes call.

A rollback only moves the pointer (a new generation, ``current`` set to the chosen snapshot): replicas
take it at their next check, and the writer's next refresh first restores it (see
:func:`~airflow_provider_accel.snapshots.restore.bootstrap`), then refreshes from there. No restart.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from airflow_provider_accel.exceptions import TerminalRefreshError
from airflow_provider_accel.snapshots.pointer import Pointer, read_pointer, write_pointer
from airflow_provider_accel.snapshots.store import SnapshotStore
from airflow_provider_accel.spicepod.snapshots import snapshot_settings

if TYPE_CHECKING:
    from airflow_provider_accel.spicepod.model import Dataset


class SnapshotNotFound(LookupError):
    """No snapshot with that id is kept for the dataset."""


class SnapshotsDisabled(ValueError):
    """The dataset does not use snapshots."""


def _store(dataset: Dataset) -> SnapshotStore:
    settings = snapshot_settings(dataset)
    if not settings.active or settings.store is None:
        raise SnapshotsDisabled(
            f"Dataset {dataset.name} does not have acceleration snapshots enabled; set the spicepod's "
            "snapshots block (enabled: true, location) and acceleration.snapshots."
        )
    return SnapshotStore(settings.store, dataset.name)


def _pointer(dataset: Dataset, store: SnapshotStore) -> Pointer:
    return read_pointer(store, dataset.name) or Pointer(dataset=dataset.name)


def list_snapshots(dataset: Dataset, limit: int | None = None) -> list[dict[str, Any]]:
    """The kept snapshots, newest first (at most ``limit``)."""
    pointer = _pointer(dataset, _store(dataset))
    entries = pointer.newest_first()[: limit if limit is not None else None]
    return [entry.public(current=entry.id == pointer.current) for entry in entries]


def get_snapshot(dataset: Dataset, snapshot_id: int) -> dict[str, Any]:
    pointer = _pointer(dataset, _store(dataset))
    entry = pointer.entry(snapshot_id)
    if entry is None:
        raise SnapshotNotFound(_not_found(dataset, snapshot_id, pointer))
    return entry.public(current=entry.id == pointer.current)


def _not_found(dataset: Dataset, snapshot_id: int, pointer: Pointer) -> str:
    kept = ", ".join(str(e.id) for e in pointer.newest_first()) or "none"
    return f"Snapshot {snapshot_id} not found for dataset {dataset.name} (kept snapshots: {kept})"


def rollback(dataset: Dataset, snapshot_id: int, *, by: str | None = None) -> dict[str, Any]:
    """Make ``snapshot_id`` the current snapshot; its object must still be in the store, whole."""
    store = _store(dataset)
    pointer = _pointer(dataset, store)
    entry = pointer.entry(snapshot_id)
    if entry is None:
        raise SnapshotNotFound(_not_found(dataset, snapshot_id, pointer))
    try:
        info = store.fs.get_file_info(store._path(entry.key))
    except OSError as err:
        raise store.fail(err, f"checking {entry.key}") from err
    if info.size != entry.size_bytes:
        raise TerminalRefreshError(
            f"Snapshot {snapshot_id} of dataset {dataset.name} cannot be made current: its object "
            f"{store.url(entry.key)} is missing or has another size ({info.size} bytes, expected "
            f"{entry.size_bytes}). Choose another snapshot.",
            dataset=dataset.name,
        )
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    if pointer.current != snapshot_id:
        write_pointer(store, pointer.bumped(current=snapshot_id, updated_at=now, rolled_back_at=now))
    return entry.public(current=True) | {"rolled_back_by": by}
