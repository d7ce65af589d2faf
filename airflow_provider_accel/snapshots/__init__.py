"""Acceleration snapshots: each refreshed file published to object storage, new hosts bootstrapped from
it, ``refresh_mode: snapshot`` read replicas, and rollback (Spice's Enterprise feature, in the open).

The refresh operator calls three functions here, one line each:

* :func:`before_refresh` — bootstrap the local file from the newest snapshot when it is missing, corrupt
  or was rolled back;
* :func:`after_refresh` — publish the refreshed file; a failure is logged and reported, never raised;
* :func:`follow_snapshots` — the whole run of a ``refresh_mode: snapshot`` replica.

Modules: ``store`` (pyarrow filesystems), ``layout`` (Spice's key layout, local state), ``pointer``
(``metadata.json``), ``files`` (local DuckDB files), ``publisher``, ``restore``, ``replica``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_accel.exceptions import AccelError

if TYPE_CHECKING:
    from airflow_provider_accel.spicepod.model import Dataset

log = logging.getLogger(__name__)


def before_refresh(dataset: Dataset, live: Path, *, lock_timeout: float) -> dict[str, Any] | None:
    """Bootstrap ``live`` from snapshots if needed; its outcome, or ``None`` when snapshots are off."""
    from airflow_provider_accel.spicepod.snapshots import snapshot_settings

    if not snapshot_settings(dataset).active:
        return None
    from airflow_provider_accel.snapshots.restore import bootstrap

    return bootstrap(dataset, live, lock_timeout=lock_timeout).summary()


def after_refresh(
    dataset: Dataset,
    live: Path,
    *,
    lock_timeout: float,
    watermark: str | None = None,
    dag_run_id: str | None = None,
) -> dict[str, Any] | None:
    """Publish ``live`` after a successful refresh; ``None`` when this dataset does not create snapshots.

    The refresh's data is already live, so a failure here does not fail it: it is logged as a warning,
    returned as ``{"status": "failed", "error": ...}`` (the refresh summary and the status route show
    it), and the next refresh publishes again (its data differs from the current snapshot's).
    """
    from airflow_provider_accel.spicepod.snapshots import snapshot_settings

    if not snapshot_settings(dataset).creates:
        return None
    from airflow_provider_accel.snapshots.publisher import publish

    try:
        outcome = publish(
            dataset, live, lock_timeout=lock_timeout, watermark=watermark, dag_run_id=dag_run_id
        )
    except (AccelError, OSError) as err:
        log.warning(
            "Dataset %s: publishing the snapshot failed; the refreshed data is live and the next refresh "
            "publishes again: %s",
            dataset.name,
            err,
        )
        return {"status": "failed", "error": str(err)}
    if outcome.status == "published":
        log.info(
            "Dataset %s: published snapshot %s to %s (%s bytes, %s) in %sms",
            dataset.name,
            outcome.snapshot_id,
            outcome.location,
            f"{outcome.size_bytes:,}",
            outcome.checksum,
            outcome.duration_ms,
        )
    else:
        log.info("Dataset %s: no new snapshot: %s", dataset.name, outcome.reason)
    return outcome.summary()


def follow_snapshots(dataset: Dataset, live: Path, *, lock_timeout: float) -> dict[str, Any]:
    """One run of a ``refresh_mode: snapshot`` replica (raises a transient or terminal refresh error)."""
    from airflow_provider_accel.snapshots.replica import follow

    return follow(dataset, live, lock_timeout=lock_timeout)


__all__ = ["after_refresh", "before_refresh", "follow_snapshots"]
