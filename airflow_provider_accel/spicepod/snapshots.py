"""Spice's acceleration-snapshot settings: the top-level ``snapshots:`` block and the ``snapshots*`` keys
of each ``acceleration:`` block, parsed and validated.

:func:`apply_snapshot_settings` is called once by the loader with the raw YAML and the parsed
:class:`~airflow_provider_accel.spicepod.model.Spicepod`; it returns the spicepod with
``Spicepod.snapshots`` and every ``Acceleration.snapshots`` filled in. Values follow Spice's
``crates/spicepod`` definitions; ``${secrets:...}`` placeholders in ``snapshots.params`` stay unresolved
here and are resolved where the object store is opened.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_accel.exceptions import SpicepodError
from airflow_provider_accel.spicepod.durations import DURATION_HELP, parse_duration

if TYPE_CHECKING:
    from airflow_provider_accel.spicepod.model import Acceleration, Dataset, Spicepod


class BootstrapOnFailure(StrEnum):
    """``snapshots.bootstrap_on_failure_behavior``: what a bootstrap does when the newest snapshot fails."""

    WARN = "warn"  # log a warning and refresh from the source (Spice's default)
    RETRY = "retry"  # fail the run as transient, so Airflow retries it
    FALLBACK = "fallback"  # try older snapshots, newest first


class SnapshotBehavior(StrEnum):
    """``acceleration.snapshots``."""

    DISABLED = "disabled"
    ENABLED = "enabled"  # bootstrap and create
    BOOTSTRAP_ONLY = "bootstrap_only"
    CREATE_ONLY = "create_only"

    @property
    def bootstraps(self) -> bool:
        return self in (SnapshotBehavior.ENABLED, SnapshotBehavior.BOOTSTRAP_ONLY)

    @property
    def creates(self) -> bool:
        return self in (SnapshotBehavior.ENABLED, SnapshotBehavior.CREATE_ONLY)


class SnapshotsTrigger(StrEnum):
    REFRESH_COMPLETE = "refresh_complete"
    TIME_INTERVAL = "time_interval"
    STREAM_BATCHES = "stream_batches"  # Spice's trigger for streaming refreshes: refused here


class SnapshotsCreationPolicy(StrEnum):
    ON_CHANGE = "on_change"  # Spice's default: no new snapshot when the data did not change
    ALWAYS = "always"


#: Supported ``snapshots.location`` schemes: those pyarrow's filesystems serve without extras.
LOCATION_SCHEMES = ("s3", "file")
#: Keys of the top-level ``snapshots:`` block.
SNAPSHOTS_BLOCK_KEYS = frozenset({"enabled", "location", "bootstrap_on_failure_behavior", "params"})
#: Keys of ``acceleration:`` read by this module (the loader accepts them and leaves them to it).
ACCELERATION_SNAPSHOT_KEYS = frozenset(
    {
        "snapshots",
        "snapshots_trigger",
        "snapshots_trigger_threshold",
        "snapshots_compaction",
        "snapshots_creation_policy",
        "snapshots_reset_expiry_on_load",
    }
)


@dataclass(frozen=True)
class SnapshotsConfig:
    """The top-level ``snapshots:`` block."""

    enabled: bool = False
    location: str = ""  # ends with "/"
    bootstrap_on_failure_behavior: BootstrapOnFailure = BootstrapOnFailure.WARN
    params: dict[str, Any] = field(default_factory=dict)  # placeholders unresolved

    @property
    def scheme(self) -> str:
        return urlsplit(self.location).scheme.lower()


@dataclass(frozen=True)
class DatasetSnapshots:
    """A dataset's snapshot settings, with the spicepod's store they use."""

    behavior: SnapshotBehavior = SnapshotBehavior.DISABLED
    trigger: SnapshotsTrigger = SnapshotsTrigger.REFRESH_COMPLETE
    trigger_threshold: timedelta | None = None  # for time_interval
    compaction: bool = False
    creation_policy: SnapshotsCreationPolicy = SnapshotsCreationPolicy.ON_CHANGE
    store: SnapshotsConfig | None = None  # None when the spicepod has no enabled snapshots block

    @property
    def active(self) -> bool:
        return (
            self.store is not None and self.store.enabled and self.behavior is not SnapshotBehavior.DISABLED
        )

    @property
    def bootstraps(self) -> bool:
        return self.active and self.behavior.bootstraps

    @property
    def creates(self) -> bool:
        return self.active and self.behavior.creates


def snapshot_settings(dataset: Dataset) -> DatasetSnapshots:
    """The dataset's snapshot settings (disabled ones for a dataset without acceleration)."""
    acceleration = dataset.acceleration
    settings = getattr(acceleration, "snapshots", None) if acceleration is not None else None
    return settings if isinstance(settings, DatasetSnapshots) else DatasetSnapshots()


# --------------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------------


def apply_snapshot_settings(data: Mapping[str, Any], spicepod: Spicepod, *, strict: bool = True) -> Spicepod:
    """``spicepod`` with its ``snapshots`` block and each dataset's snapshot settings read from ``data``.

    A dataset whose snapshot settings are invalid errors alone (``dataset_errors``) unless ``strict``.
    """
    from airflow_provider_accel.spicepod.model import DatasetError  # the model imports this module

    store = _parse_block(data.get("snapshots"))
    raw_datasets = data.get("datasets") or []
    by_name = {
        raw["name"]: raw["acceleration"]
        for raw in raw_datasets
        if isinstance(raw, Mapping)
        and isinstance(raw.get("name"), str)
        and isinstance(raw.get("acceleration"), Mapping)
    }
    datasets = []
    errors = list(spicepod.dataset_errors)
    for dataset in spicepod.datasets:
        raw_acceleration = by_name.get(dataset.name)
        if dataset.acceleration is None or raw_acceleration is None:
            datasets.append(dataset)
            continue
        try:
            settings = _parse_acceleration(raw_acceleration, dataset, store)
        except SpicepodError as err:
            if strict:
                raise
            errors.append(DatasetError(dataset.name, dataset.from_, str(err), err.field))
            continue
        acceleration: Acceleration = dataclasses.replace(dataset.acceleration, snapshots=settings)
        datasets.append(dataclasses.replace(dataset, acceleration=acceleration))
    spicepod = dataclasses.replace(spicepod, dataset_errors=tuple(errors))
    result = dataclasses.replace(spicepod, snapshots=store, datasets=tuple(datasets))
    # Any fixed data_dir tells which datasets share a file: relative files resolve against the same one.
    check_dedicated_files(result)
    return result


def _block_error(key: str, value: Any, problem: str) -> SpicepodError:
    return SpicepodError(f"Spicepod: snapshots.{key} {value!r} {problem}.", field=f"snapshots.{key}")


def _parse_block(raw: Any) -> SnapshotsConfig | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise SpicepodError(
            f"Spicepod: snapshots must be a mapping with enabled, location, bootstrap_on_failure_behavior "
            f"and params, not a {type(raw).__name__}.",
            field="snapshots",
        )
    for key in raw:
        if key not in SNAPSHOTS_BLOCK_KEYS:
            hint = difflib.get_close_matches(str(key), sorted(SNAPSHOTS_BLOCK_KEYS), n=1)
            did_you_mean = f" Did you mean {hint[0]!r}?" if hint else ""
            raise SpicepodError(
                f"Spicepod: unknown key snapshots.{key!r}.{did_you_mean} Allowed keys in snapshots: "
                f"{', '.join(sorted(SNAPSHOTS_BLOCK_KEYS))}.",
                field=f"snapshots.{key}",
            )
    enabled = raw.get("enabled", False)
    if not isinstance(enabled, bool):
        raise _block_error("enabled", enabled, "is not a boolean; write true or false (unquoted)")
    location = raw.get("location")
    if location is None and not enabled:
        location = ""
    elif not isinstance(location, str) or not location.strip():
        raise _block_error(
            "location",
            location,
            "is not allowed; snapshots need a location URI such as s3://bucket/folder/ or "
            "file:///var/lib/accel-snapshots/",
        )
    else:
        location = location.strip()
        scheme = urlsplit(location).scheme.lower()
        if not scheme:
            raise _block_error(
                "location",
                location,
                "is not a URI; a bare path is not allowed (as in Spice): write file:///path/ for a local "
                "folder or s3://bucket/folder/",
            )
        if scheme not in LOCATION_SCHEMES:
            raise _block_error(
                "location",
                location,
                f"uses the scheme {scheme}://, which is not supported here; use one of "
                f"{', '.join(s + '://' for s in LOCATION_SCHEMES)}",
            )
        parts = urlsplit(location)
        if scheme == "s3" and not parts.netloc:
            raise _block_error("location", location, "names no bucket; write s3://bucket/folder/")
        if scheme == "file" and (parts.netloc not in ("", "localhost") or not parts.path.startswith("/")):
            raise _block_error(
                "location", location, "is not an absolute file URI; write file:///absolute/folder/"
            )
        location = location.rstrip("/") + "/"
    behavior_raw = raw.get("bootstrap_on_failure_behavior")
    behavior = BootstrapOnFailure.WARN
    if behavior_raw is not None:
        behavior = _enum_value(
            behavior_raw,
            BootstrapOnFailure,
            lambda allowed: _block_error(
                "bootstrap_on_failure_behavior", behavior_raw, f"is not allowed; use one of {allowed}"
            ),
        )
    params_raw = raw.get("params") or {}
    if not isinstance(params_raw, Mapping):
        raise _block_error("params", params_raw, "is not a mapping of parameter names to values")
    params: dict[str, Any] = {}
    for key, value in params_raw.items():
        if not isinstance(key, str) or (
            value is not None and not isinstance(value, str | int | float | bool)
        ):
            raise _block_error(
                f"params.{key}", value, "is not allowed; parameter values are strings or numbers"
            )
        params[key] = value
    return SnapshotsConfig(
        enabled=enabled, location=location, bootstrap_on_failure_behavior=behavior, params=params
    )


def _enum_value(value: Any, enum: type[Any], error: Any) -> Any:
    if isinstance(value, str):
        wanted = value.strip().casefold()
        for member in enum:
            if member.value.casefold() == wanted:
                return member
    raise error(", ".join(member.value for member in enum))


def _on_off(value: Any, dataset: str, key: str) -> bool:
    """Spice writes these switches as ``enabled`` / ``disabled``; YAML booleans are taken too."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().casefold() in ("enabled", "disabled"):
        return value.strip().casefold() == "enabled"
    raise SpicepodError(
        f"Dataset {dataset}: acceleration.{key} {value!r} is not allowed; use enabled or disabled.",
        dataset=dataset,
        field=f"acceleration.{key}",
    )


def _parse_acceleration(
    raw: Mapping[str, Any], dataset: Dataset, store: SnapshotsConfig | None
) -> DatasetSnapshots:
    from airflow_provider_accel.spicepod.model import RefreshMode

    name = dataset.name
    acceleration = dataset.acceleration
    assert acceleration is not None

    def error(key: str, value: Any, problem: str) -> SpicepodError:
        return SpicepodError(
            f"Dataset {name}: acceleration.{key} {value!r} {problem}.",
            dataset=name,
            field=f"acceleration.{key}",
        )

    def enum(key: str, enum_type: type[Any], default: Any) -> Any:
        value = raw.get(key)
        if value is None:
            return default
        return _enum_value(
            value, enum_type, lambda allowed: error(key, value, f"is not allowed; use one of {allowed}")
        )

    behavior = enum("snapshots", SnapshotBehavior, SnapshotBehavior.DISABLED)
    if isinstance(raw.get("snapshots"), bool):  # `snapshots: true` / `false`, as some spicepods write it
        behavior = SnapshotBehavior.ENABLED if raw["snapshots"] else SnapshotBehavior.DISABLED
    trigger = enum("snapshots_trigger", SnapshotsTrigger, SnapshotsTrigger.REFRESH_COMPLETE)
    if trigger is SnapshotsTrigger.STREAM_BATCHES:
        raise error(
            "snapshots_trigger",
            raw.get("snapshots_trigger"),
            "is not supported here (it counts the batches of a streaming refresh, which this provider "
            "does not run); use refresh_complete or time_interval",
        )
    threshold_raw = raw.get("snapshots_trigger_threshold")
    threshold: timedelta | None = None
    if threshold_raw is not None:
        try:
            threshold = parse_duration(threshold_raw)
        except ValueError:
            raise error("snapshots_trigger_threshold", threshold_raw, f"is not {DURATION_HELP}") from None
        if threshold <= timedelta(0):
            raise error(
                "snapshots_trigger_threshold", threshold_raw, "is not allowed; it must be longer than zero"
            )
    if trigger is SnapshotsTrigger.TIME_INTERVAL and threshold is None:
        threshold = timedelta(minutes=10)  # Spice's default interval
    compaction = _on_off(raw.get("snapshots_compaction"), name, "snapshots_compaction")
    _on_off(raw.get("snapshots_reset_expiry_on_load"), name, "snapshots_reset_expiry_on_load")  # caching only
    policy = enum("snapshots_creation_policy", SnapshotsCreationPolicy, SnapshotsCreationPolicy.ON_CHANGE)

    is_replica = acceleration.refresh_mode is RefreshMode.SNAPSHOT
    uses_snapshots = behavior is not SnapshotBehavior.DISABLED or is_replica
    if uses_snapshots:
        from airflow_provider_accel.spicepod.model import Engine

        # The key that turned snapshots on: a replica's refresh_mode, else acceleration.snapshots.
        field_name = "refresh_mode" if is_replica and behavior is SnapshotBehavior.DISABLED else "snapshots"
        value = "snapshot" if field_name == "refresh_mode" else behavior.value
        if acceleration.engine in (Engine.SQLITE, Engine.POSTGRES):
            # A snapshot is a checked DuckDB file (publish, bootstrap and replicas verify it with DuckDB).
            where = (
                "the data lives on the server: use PostgreSQL's own backups or replication"
                if acceleration.engine is Engine.POSTGRES
                else "a snapshot is a DuckDB file here"
            )
            raise error(
                field_name,
                value,
                f"is not supported for engine {acceleration.engine.value} ({where}); use engine duckdb, "
                "or set acceleration.snapshots to disabled",
            )
        if store is None or not store.enabled:
            raise error(
                field_name,
                value,
                "needs the spicepod's top-level snapshots block with enabled: true and a location; "
                "add it, or set acceleration.snapshots to disabled",
            )
        if is_replica and behavior.creates:
            raise error(
                "snapshots",
                behavior.value,
                "is not allowed with refresh_mode snapshot: a read replica follows the published snapshots "
                "and never writes one; use bootstrap_only (or leave snapshots out)",
            )
    if is_replica and behavior is SnapshotBehavior.DISABLED:
        behavior = SnapshotBehavior.BOOTSTRAP_ONLY
    return DatasetSnapshots(
        behavior=behavior,
        trigger=trigger,
        trigger_threshold=threshold,
        compaction=compaction,
        creation_policy=policy,
        store=store if store is not None and store.enabled else None,
    )


def check_dedicated_files(spicepod: Spicepod, data_dir: str = "/data_dir") -> None:
    """Snapshots copy a dataset's whole file: a dataset sharing its file with another is refused."""
    from airflow_provider_accel.accelerator.layout import dataset_file

    users: dict[str, list[str]] = {}
    for dataset in spicepod.accelerated_datasets:
        users.setdefault(str(dataset_file(dataset, data_dir)), []).append(dataset.name)
    for dataset in spicepod.accelerated_datasets:
        if not snapshot_settings(dataset).active:
            continue
        sharing = users[str(dataset_file(dataset, data_dir))]
        if len(sharing) > 1:
            others = ", ".join(n for n in sharing if n != dataset.name)
            raise SpicepodError(
                f"Dataset {dataset.name}: acceleration.snapshots needs a dataset with its own file, but "
                f"params.duckdb_file is shared with {others}. Give {dataset.name} its own duckdb_file, "
                "or set acceleration.snapshots to disabled.",
                dataset=dataset.name,
                field="acceleration.snapshots",
            )


__all__ = [
    "ACCELERATION_SNAPSHOT_KEYS",
    "SNAPSHOTS_BLOCK_KEYS",
    "BootstrapOnFailure",
    "DatasetSnapshots",
    "SnapshotBehavior",
    "SnapshotsConfig",
    "SnapshotsCreationPolicy",
    "SnapshotsTrigger",
    "apply_snapshot_settings",
    "check_dedicated_files",
    "snapshot_settings",
]
