"""Spice's snapshot settings: the top-level ``snapshots:`` block and the ``acceleration.snapshots*`` keys."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_accel.exceptions import SpicepodError
from airflow_provider_accel.spicepod.loader import parse_spicepod
from airflow_provider_accel.spicepod.model import RefreshMode
from airflow_provider_accel.spicepod.snapshots import (
    BootstrapOnFailure,
    SnapshotBehavior,
    SnapshotsCreationPolicy,
    SnapshotsTrigger,
    snapshot_settings,
)


def _pod(block: Any, *accelerations: dict[str, Any], files: tuple[str | None, ...] = ()) -> dict[str, Any]:
    datasets = []
    for index, acceleration in enumerate(accelerations):
        acc = dict(acceleration)
        if index < len(files) and files[index]:
            acc["params"] = {"duckdb_file": files[index]}
        datasets.append({"from": "file:data.parquet", "name": f"d{index}", "acceleration": acc})
    pod: dict[str, Any] = {"version": "v1", "kind": "Spicepod", "name": "p", "datasets": datasets}
    if block is not None:
        pod["snapshots"] = block
    return pod


STORE = {"enabled": True, "location": "s3://bucket/folder", "params": {"s3_endpoint": "http://127.0.0.1:9"}}


def test_spice_example_parses() -> None:
    """Spice's documented example loads with every value it sets."""
    pod = parse_spicepod(
        _pod(
            {**STORE, "bootstrap_on_failure_behavior": "fallback"},
            {
                "snapshots": "enabled",
                "snapshots_trigger": "time_interval",
                "snapshots_trigger_threshold": "30m",
                "snapshots_compaction": "enabled",
                "snapshots_creation_policy": "always",
                "snapshots_reset_expiry_on_load": "disabled",
            },
        )
    )
    assert pod.snapshots is not None
    assert pod.snapshots.location == "s3://bucket/folder/"
    assert pod.snapshots.bootstrap_on_failure_behavior is BootstrapOnFailure.FALLBACK
    settings = snapshot_settings(pod.datasets[0])
    assert settings.behavior is SnapshotBehavior.ENABLED and settings.bootstraps and settings.creates
    assert settings.trigger is SnapshotsTrigger.TIME_INTERVAL
    assert settings.trigger_threshold is not None and settings.trigger_threshold.total_seconds() == 1800
    assert settings.compaction and settings.creation_policy is SnapshotsCreationPolicy.ALWAYS


def test_defaults_are_spices() -> None:
    """Without the keys: snapshots disabled, refresh_complete trigger, on_change policy, warn on failure."""
    pod = parse_spicepod(_pod({"enabled": True, "location": "file:///tmp/snaps/"}, {}))
    settings = snapshot_settings(pod.datasets[0])
    assert not settings.active
    assert settings.trigger is SnapshotsTrigger.REFRESH_COMPLETE
    assert settings.creation_policy is SnapshotsCreationPolicy.ON_CHANGE
    assert (
        pod.snapshots is not None and pod.snapshots.bootstrap_on_failure_behavior is BootstrapOnFailure.WARN
    )


def test_replica_mode_bootstraps_only() -> None:
    """refresh_mode snapshot is a reader: it bootstraps and never creates."""
    pod = parse_spicepod(_pod(STORE, {"refresh_mode": "snapshot", "refresh_check_interval": "10s"}))
    assert pod.datasets[0].acceleration is not None
    assert pod.datasets[0].acceleration.refresh_mode is RefreshMode.SNAPSHOT
    settings = snapshot_settings(pod.datasets[0])
    assert settings.behavior is SnapshotBehavior.BOOTSTRAP_ONLY and not settings.creates


@pytest.mark.parametrize(
    ("block", "acceleration", "field", "words"),
    [
        ({**STORE, "location": "/var/snaps"}, {}, "snapshots.location", "bare path"),
        ({**STORE, "location": "gs://b/f"}, {}, "snapshots.location", "s3://, file://"),
        ({**STORE, "location": "s3:///f"}, {}, "snapshots.location", "names no bucket"),
        (
            {**STORE, "bootstrap_on_failure_behavior": "panic"},
            {},
            "snapshots.bootstrap_on_failure_behavior",
            "warn, retry, fallback",
        ),
        ({**STORE, "enable": True}, {}, "snapshots.enable", "Did you mean 'enabled'"),
        ({"enabled": True}, {}, "snapshots.location", "needs a location"),
        (STORE, {"snapshots": "sometimes"}, "acceleration.snapshots", "enabled, bootstrap_only"),
        (STORE, {"snapshots_trigger": "stream_batches"}, "acceleration.snapshots_trigger", "not supported"),
        (
            STORE,
            {"snapshots_trigger_threshold": "soon"},
            "acceleration.snapshots_trigger_threshold",
            "duration",
        ),
        (STORE, {"snapshots_compaction": "yes"}, "acceleration.snapshots_compaction", "enabled or disabled"),
        (
            STORE,
            {"snapshots_creation_policy": "never"},
            "acceleration.snapshots_creation_policy",
            "on_change, always",
        ),
        (None, {"snapshots": "enabled"}, "acceleration.snapshots", "top-level snapshots block"),
        ({**STORE, "enabled": False}, {"refresh_mode": "snapshot"}, "acceleration.refresh_mode", "top-level"),
        (
            STORE,
            {"refresh_mode": "snapshot", "snapshots": "enabled"},
            "acceleration.snapshots",
            "bootstrap_only",
        ),
    ],
)
def test_invalid_values_are_named(block: Any, acceleration: dict[str, Any], field: str, words: str) -> None:
    """Every invalid snapshot value is refused with the field and what to write instead."""
    if field == "snapshots.location" and words == "needs a location":
        words = "location URI"
    with pytest.raises(SpicepodError) as info:
        parse_spicepod(_pod(block, acceleration), strict=True)
    assert info.value.field == field
    assert words in str(info.value)


def test_invalid_dataset_settings_error_that_dataset_alone() -> None:
    """Outside strict mode, a dataset with invalid snapshot settings errors alone; the pod still loads."""
    pod = parse_spicepod(_pod(STORE, {"snapshots": "bogus"}), strict=False)
    assert [e.field for e in pod.dataset_errors] == ["acceleration.snapshots"]
    assert "bogus" in pod.dataset_errors[0].reason


def test_shared_file_is_refused() -> None:
    """A dataset sharing its DuckDB file cannot have snapshots (a snapshot copies the whole file)."""
    with pytest.raises(SpicepodError, match="needs a dataset with its own file") as info:
        parse_spicepod(
            _pod(STORE, {"snapshots": "enabled"}, {}, files=("shared.duckdb", "shared.duckdb")), strict=True
        )
    assert info.value.dataset == "d0"
    # Without snapshots, sharing stays allowed.
    parse_spicepod(_pod(STORE, {}, {}, files=("shared.duckdb", "shared.duckdb")))
