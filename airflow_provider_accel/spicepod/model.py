"""Typed model of the part of a Spice.ai ``spicepod.yaml`` this provider reads.

Objects here are immutable and already validated: :mod:`airflow_provider_accel.spicepod.loader`
builds them from YAML and rejects every invalid value with a :class:`SpicepodError` that names the
dataset, the field and what is allowed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_accel.spicepod.snapshots import DatasetSnapshots, SnapshotsConfig

from airflow_provider_accel.accelerator.modes import ON_DEMAND_MODES as ON_DEMAND_MODES  # re-exported
from airflow_provider_accel.accelerator.modes import REFRESH_MODES
from airflow_provider_accel.accelerator.modes import RefreshMode as RefreshMode  # re-exported

#: Modes that load once and then have nothing to re-fetch here, with why (DAG file log, status).
INITIAL_LOAD_ONLY: dict[RefreshMode, str] = {
    mode: rules.initial_load_only_reason
    for mode, rules in REFRESH_MODES.items()
    if rules.initial_load_only_reason is not None
}


class TimeFormat(StrEnum):
    TIMESTAMP = "timestamp"
    TIMESTAMPTZ = "timestamptz"
    UNIX_SECONDS = "unix_seconds"
    UNIX_MILLIS = "unix_millis"
    ISO8601 = "ISO8601"
    DATE = "date"


class OnConflict(StrEnum):
    DROP = "drop"
    UPSERT = "upsert"
    UPSERT_DEDUP = "upsert_dedup"  # upsert, keeping one row per key within the incoming batch
    UPSERT_DEDUP_BY_ROW_ID = "upsert_dedup_by_row_id"


class OnSchemaChange(StrEnum):
    """What a refresh does when the source's schema no longer matches the accelerated table."""

    BLOCK = "block"  # Spice's default
    FAIL = "fail"
    APPEND_NEW_COLUMNS = "append_new_columns"
    SYNC_ALL_COLUMNS = "sync_all_columns"
    DROP_AND_RECREATE = "drop_and_recreate"


class IndexKind(StrEnum):
    """A value of ``acceleration.indexes`` (``{column_or_(a, b): enabled | unique}``)."""

    ENABLED = "enabled"
    UNIQUE = "unique"


class Engine(StrEnum):
    DUCKDB = "duckdb"
    ARROW = "arrow"  # Spice's in-memory default: accelerated as a DuckDB file here, with a notice
    SQLITE = "sqlite"
    POSTGRES = "postgres"


class AccelerationMode(StrEnum):
    FILE = "file"
    MEMORY = "memory"  # no meaning across task processes: a DuckDB file here, with a notice
    FILE_CREATE = "file_create"  # Spice 2.x: start from an empty file on first deploy
    FILE_UPDATE = "file_update"  # Spice 2.x: keep and update an existing file


@dataclass(frozen=True)
class Acceleration:
    """The ``acceleration:`` block of a dataset."""

    enabled: bool = True
    engine: Engine = Engine.DUCKDB
    mode: AccelerationMode = AccelerationMode.FILE
    refresh_mode: RefreshMode = RefreshMode.FULL
    refresh_check_interval: timedelta | None = None
    refresh_cron: str | None = None
    refresh_sql: str | None = None
    refresh_data_window: timedelta | None = None
    refresh_append_overlap: timedelta | None = None
    refresh_retry_enabled: bool = True
    refresh_retry_max_attempts: int | None = None  # None = unlimited, as in Spice
    refresh_jitter_enabled: bool = False
    refresh_jitter_max: timedelta | None = None
    retention_check_enabled: bool = False
    retention_period: timedelta | None = None
    retention_check_interval: timedelta | None = None
    retention_sql: str | None = None  # a DELETE filter on the dataset, validated like refresh_sql
    primary_key: tuple[str, ...] = ()
    on_conflict: dict[str, OnConflict] = field(default_factory=dict)
    indexes: dict[str, IndexKind] = field(default_factory=dict)  # column or "(a, b)" -> kind
    params: dict[str, Any] = field(default_factory=dict)
    snapshots: DatasetSnapshots | None = None  # the snapshots* keys, set by spicepod.snapshots

    @property
    def duckdb_file(self) -> str | None:
        """Spice's own key for the accelerator file, when the spicepod sets it."""
        value = self.params.get("duckdb_file")
        return str(value) if value else None

    @property
    def conflict_action(self) -> OnConflict | None:
        """What to do with an incoming row whose primary key is already accelerated (``None``: keep both)."""
        if not self.primary_key or not self.on_conflict:
            return None
        return next(iter(self.on_conflict.values()))

    def effective_jitter_max(self) -> timedelta | None:
        """The jitter bound Spice applies: ``refresh_jitter_max``, else 10% of the check interval."""
        if not self.refresh_jitter_enabled:
            return None
        if self.refresh_jitter_max is not None:
            return self.refresh_jitter_max
        if self.refresh_check_interval is not None:
            return self.refresh_check_interval / 10
        return None


@dataclass(frozen=True)
class Dataset:
    """One entry of ``datasets:``."""

    from_: str
    name: str
    description: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    time_column: str | None = None
    time_format: TimeFormat | None = None
    on_schema_change: OnSchemaChange = OnSchemaChange.BLOCK
    acceleration: Acceleration | None = None

    @property
    def accelerated(self) -> bool:
        """True when the dataset has an ``acceleration`` block that is enabled."""
        return self.acceleration is not None and self.acceleration.enabled

    @property
    def dag_id(self) -> str:
        return dag_id_for(self.name)


@dataclass(frozen=True)
class DatasetError:
    """A dataset of the spicepod that cannot be served: it gets no DAG, and status ``Error``."""

    name: str
    from_: str
    reason: str  # what is wrong and what to do, as a SpicepodError message says it
    field: str | None = None


class ApiKeyAccess(StrEnum):
    READ_ONLY = "ro"
    READ_WRITE = "rw"


@dataclass(frozen=True)
class ApiKey:
    """One of ``runtime.auth.api-key.keys`` (``value[:ro|:rw]``); ``value`` is never logged or shown."""

    value: str = field(repr=False)
    access: ApiKeyAccess = ApiKeyAccess.READ_ONLY
    key_id: str = ""  # a non-secret name for logs and triggered_by (derived from the value's hash)


@dataclass(frozen=True)
class Spicepod:
    """A parsed spicepod. ``path`` is where it was read from, if it came from a file."""

    name: str
    version: str = "v1"
    kind: str = "Spicepod"
    datasets: tuple[Dataset, ...] = ()
    path: str | None = None
    #: Datasets that cannot be served (bad field, unsupported engine or connector, missing extra).
    dataset_errors: tuple[DatasetError, ...] = ()
    #: What was accepted but is not acted on, or acted on differently from Spice (one line each).
    notices: tuple[str, ...] = ()
    #: ``runtime.auth.api-key``: whether it is enabled, and its keys (placeholders unresolved).
    api_key_auth_enabled: bool = False
    api_keys: tuple[ApiKey, ...] = ()
    #: The top-level ``snapshots:`` block (set by :mod:`~airflow_provider_accel.spicepod.snapshots`).
    snapshots: SnapshotsConfig | None = None

    def dataset(self, name: str) -> Dataset | None:
        """The dataset called ``name``, matched case-insensitively as Spice does; ``None`` if absent."""
        wanted = name.casefold()
        return next((d for d in self.datasets if d.name.casefold() == wanted), None)

    @property
    def accelerated_datasets(self) -> tuple[Dataset, ...]:
        return tuple(d for d in self.datasets if d.accelerated)

    def dataset_error(self, name: str) -> DatasetError | None:
        """Why the dataset called ``name`` (case-insensitive) cannot be served; ``None`` if it can."""
        wanted = name.casefold()
        return next((e for e in self.dataset_errors if e.name.casefold() == wanted), None)


_DAG_ID_UNSAFE = re.compile(r"[^a-z0-9_]")


def dag_id_for(dataset_name: str) -> str:
    """The refresh DAG id of a dataset: ``accelerate_<name>``, lowercased, other characters as ``_``."""
    return "accelerate_" + _DAG_ID_UNSAFE.sub("_", dataset_name.lower())
