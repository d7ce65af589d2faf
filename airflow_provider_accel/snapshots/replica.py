"""``refresh_mode: snapshot``: a read replica that follows the dataset's published snapshots.

It never queries the source. Each run reads the pointer (one small GET) and compares the current
snapshot's checksum with the one the local file came from (``<file>.snapshot.json``): unchanged costs
nothing more. A new snapshot is downloaded, verified (checksum, engine, table, schema against the local
one under ``on_schema_change``) and swapped in atomically; anything refused leaves the local data as it was.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from airflow_provider_accel.exceptions import TerminalRefreshError, TransientRefreshError
from airflow_provider_accel.snapshots import files
from airflow_provider_accel.snapshots.layout import LocalState
from airflow_provider_accel.snapshots.pointer import read_pointer
from airflow_provider_accel.snapshots.restore import install, schema_refusal
from airflow_provider_accel.snapshots.store import SnapshotStore
from airflow_provider_accel.spicepod.model import Dataset
from airflow_provider_accel.spicepod.snapshots import snapshot_settings

log = logging.getLogger(__name__)


def follow(dataset: Dataset, live: Path, *, lock_timeout: float) -> dict[str, Any]:
    """One replica check; the refresh summary (the fields of a refresh result, plus ``snapshot``)."""
    started = time.monotonic()
    settings = snapshot_settings(dataset)
    if settings.store is None:
        raise TerminalRefreshError(
            f"Dataset {dataset.name}: refresh_mode snapshot needs the spicepod's snapshots block (enabled, "
            "location).",
            dataset=dataset.name,
        )
    store = SnapshotStore(settings.store, dataset.name)
    pointer = read_pointer(store, dataset.name)
    entry = pointer.current_entry if pointer is not None else None
    if pointer is None or entry is None:
        raise TransientRefreshError(
            f"Dataset {dataset.name}: no snapshot is published at {store.location} yet; "
            "the replica waits for "
            "the writer's first refresh and checks again at its next run.",
            dataset=dataset.name,
        )
    state = LocalState.read(live)
    if live.exists() and state is not None and state.checksum == entry.checksum:
        if state.generation != pointer.generation:
            LocalState(state.snapshot_id, state.checksum, pointer.generation, "replica").write(live)
        log.info(
            "Dataset %s: snapshot %s is current and already local; nothing to do.", dataset.name, entry.id
        )
        return _summary(dataset, live, entry.rows, 0, started, entry.watermark, "unchanged", entry.id)

    local_schema: list[list[str]] | None = None
    if live.exists() and files.is_corrupt(live, dataset.name) is None:
        local_schema = files.inspect(live, dataset.name).schema

    def check_schema(new: list[list[str]]) -> str | None:
        return None if local_schema is None else schema_refusal(dataset, local_schema, new)

    outcome = install(
        dataset,
        live,
        entry,
        pointer,
        store,
        lock_timeout=lock_timeout,
        role="replica",
        check_schema=check_schema,
    )
    log.info(
        "Dataset %s: replica now serves snapshot %s (%s rows, %s bytes), downloaded in %sms.",
        dataset.name,
        entry.id,
        f"{outcome.rows:,}",
        f"{outcome.size_bytes:,}",
        outcome.duration_ms,
    )
    return _summary(
        dataset, live, outcome.rows, outcome.size_bytes, started, entry.watermark, "restored", entry.id
    )


def _summary(
    dataset: Dataset,
    live: Path,
    rows: int,
    size: int,
    started: float,
    watermark: str | None,
    status: str,
    snapshot_id: int,
) -> dict[str, Any]:
    return {
        "dataset": dataset.name,
        "mode": "snapshot",
        "rows": rows if status == "restored" else 0,
        "bytes": size,
        "duration_ms": round((time.monotonic() - started) * 1000),
        "total_rows": rows,
        "watermark": watermark,
        "path": str(live),
        "refresh_sql": None,
        "snapshot": {"status": status, "snapshot_id": snapshot_id},
    }
