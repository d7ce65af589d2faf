"""Every spicepod field, declared once: its parser, default, the Spice versions that know it, whether
it is an on-demand override, and whether this provider acts on it or ignores it (with the notice).

These tables drive everything else that knows about a field: the loader's key checks, parsing and
cross-field rules (:mod:`~airflow_provider_accel.spicepod.loader`), the on-demand override parser
(:mod:`~airflow_provider_accel.spicepod.overrides`), the API's ``RefreshOverrides`` model, the
trigger form's params and their format checkers, and the "ignored" notices. Adding a Spice key is
one :class:`SpiceField` here (plus a model attribute when it is acted on).

The key lists follow Spice's ``crates/spicepod`` structs: the dataset and acceleration structs deny
unknown fields, the top-level one ignores them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from airflow_provider_accel.spicepod import parsers as p
from airflow_provider_accel.spicepod.model import (
    ON_DEMAND_MODES,
    AccelerationMode,
    Engine,
    IndexKind,
    OnSchemaChange,
    RefreshMode,
    TimeFormat,
)

if TYPE_CHECKING:
    from airflow_provider_accel.spicepod.model import Acceleration


class SpiceVersion(StrEnum):
    """The Spice release line that introduced a field."""

    V1 = "1.x"
    V2 = "2.x"


class Use(StrEnum):
    """What this provider does with a field."""

    ACTED_ON = "acted_on"  # parsed into the model and applied
    IGNORED = "ignored"  # validated (when it has a parser), then ignored with a logged notice


Rule = Callable[[p.FieldContext], None]


@dataclass(frozen=True)
class OnDemand:
    """How a field is offered as an on-demand override (Spice's ``RefreshOverrides``)."""

    parse: p.OverrideParser  # (value, key, dataset) -> value, or None for "no override"
    to_conf: Callable[[Any], Any]  # the parsed value as JSON for a DAG run conf
    api_type: Any  # the API model's type (``| None`` is added)
    api_help: str
    title: str
    form_help: str  # ``{dataset}`` is replaced by the dataset name
    form_enum: tuple[str, ...] | None = None
    #: JSON-schema format of the trigger-form param; ``{dataset}`` is replaced. A format names a
    #: checker that runs :func:`~airflow_provider_accel.spicepod.overrides.parse_overrides`.
    form_format: str | None = None
    form_default: Callable[[Acceleration], Any] | None = None
    example: Any = None


@dataclass(frozen=True)
class SpiceField:
    """One key of a spicepod section."""

    key: str
    parse: p.SpicepodParser | None = None  # None: an ignored key whose value is not read
    default: Any = None
    since: SpiceVersion = SpiceVersion.V1
    use: Use = Use.ACTED_ON
    notice: str | None = None  # for an ignored key: why it has no effect here
    #: For a key parsed into the model that the engine does not apply yet: what happens instead
    #: (noticed whenever the key is set, so nobody relies on it unknowingly).
    pending: str | None = None
    attr: str | None = None  # the model attribute, when it is not the key
    on_demand: OnDemand | None = None
    rules: tuple[Rule, ...] = ()  # checks across fields, run once the section is parsed

    @property
    def attribute(self) -> str:
        return self.attr or self.key


@dataclass(frozen=True)
class Section:
    """The fields of one YAML mapping (top level, dataset, acceleration, acceleration.params)."""

    name: str
    fields: tuple[SpiceField, ...]
    rejects_unknown: bool = True

    def __iter__(self) -> Iterator[SpiceField]:
        return iter(self.fields)

    def get(self, key: str) -> SpiceField | None:
        return next((f for f in self.fields if f.key == key), None)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(f.key for f in self.fields)

    def acted_on(self) -> tuple[SpiceField, ...]:
        return tuple(f for f in self.fields if f.use is Use.ACTED_ON and f.parse is not None)


def ignored(
    key: str, notice: str, *, since: SpiceVersion = SpiceVersion.V1, parse: p.SpicepodParser | None = None
) -> SpiceField:
    return SpiceField(key, parse=parse, since=since, use=Use.IGNORED, notice=notice)


# --------------------------------------------------------------------------------------------------
# Cross-field rules (each names the field that needs the missing piece)
# --------------------------------------------------------------------------------------------------


def _one_schedule(ctx: p.FieldContext) -> None:
    if ctx.parsed.get("refresh_cron") is not None and ctx.parsed.get("refresh_check_interval") is not None:
        raise ctx.fail(
            "refresh_cron",
            "acceleration.refresh_check_interval and acceleration.refresh_cron are both set; use one of "
            "them to schedule refreshes.",
        )


def _append_needs_time_column(ctx: p.FieldContext) -> None:
    if ctx.parsed.get("refresh_mode") is RefreshMode.APPEND and ctx.dataset_values.get("time_column") is None:
        raise ctx.fail(
            "refresh_mode",
            "acceleration.refresh_mode append needs the dataset's time_column (the watermark column). "
            "Set time_column, or use refresh_mode full; an append without time_column is only possible "
            "as an on-demand refresh.",
        )


def _window_needs_time_column(ctx: p.FieldContext) -> None:
    if ctx.parsed.get("refresh_data_window") is not None and ctx.dataset_values.get("time_column") is None:
        raise ctx.fail(
            "refresh_data_window",
            "acceleration.refresh_data_window needs the dataset's time_column (the column the window is "
            "measured on). Set time_column or remove the window.",
        )


def _retention_complete(ctx: p.FieldContext) -> None:
    if not ctx.parsed.get("retention_check_enabled"):
        return
    if ctx.parsed.get("retention_sql") is not None and ctx.parsed.get("retention_period") is None:
        return  # retention_sql alone is a complete retention policy, as in Spice
    missing = " and ".join(
        part
        for part, absent in (
            ("time_column", ctx.dataset_values.get("time_column") is None),
            ("acceleration.retention_period", ctx.parsed.get("retention_period") is None),
        )
        if absent
    )
    if missing:
        raise ctx.fail(
            "retention_check_enabled",
            f"acceleration.retention_check_enabled needs {missing} (or acceleration.retention_sql). Set "
            f"{missing}, or set retention_check_enabled to false.",
        )


def _conflict_targets(ctx: p.FieldContext) -> None:
    """Spice: one target, or several when every action is drop; a target is the key or a unique index."""
    on_conflict = ctx.parsed.get("on_conflict") or {}
    if not on_conflict:
        return
    primary_key: tuple[str, ...] = ctx.parsed.get("primary_key") or ()
    unique = [
        p.column_reference(column)
        for column, kind in (ctx.parsed.get("indexes") or {}).items()
        if kind is IndexKind.UNIQUE
    ]
    if not primary_key and not unique:
        raise ctx.fail(
            "on_conflict",
            "acceleration.on_conflict needs acceleration.primary_key (the key a conflict is detected on). "
            "Set primary_key or remove on_conflict.",
        )
    from airflow_provider_accel.spicepod.model import OnConflict

    if len(on_conflict) > 1 and any(action is not OnConflict.DROP for action in on_conflict.values()):
        raise ctx.error(
            "on_conflict",
            {k: v.value for k, v in on_conflict.items()},
            "is not allowed; write one entry, the primary key mapped to its action, such as {id: upsert} "
            "(several targets only when every one of them is drop)",
        )
    written = ", ".join(primary_key)
    expected = f"({written})" if len(primary_key) > 1 else written
    for target in on_conflict:
        columns = p.column_reference(target)
        if columns != primary_key and columns not in unique:
            raise ctx.error(
                "on_conflict",
                {k: v.value for k, v in on_conflict.items()},
                f"is not allowed; its key must be the primary key, {expected or '(none set)'}, "
                "or a unique index",
            )


def _sort_columns_alone(ctx: p.FieldContext) -> None:
    params = ctx.parsed.get("params") or {}
    if params.get("on_refresh_sort_columns") and (ctx.parsed.get("primary_key") or ctx.parsed.get("indexes")):
        raise ctx.fail(
            "params",
            "acceleration.params.on_refresh_sort_columns cannot be combined with primary_key or indexes "
            "(as in Spice). Remove the sort columns, or the key and indexes.",
        )


def _on_conflict(value: Any, key: str, ctx: p.FieldContext) -> dict[str, Any]:
    from airflow_provider_accel.spicepod.model import OnConflict

    if not isinstance(value, dict) or not value:
        raise ctx.error(
            key,
            value,
            "is not allowed; write one entry, the primary key mapped to drop or upsert, such as {id: upsert}",
        )
    parsed: dict[str, OnConflict] = {}
    for target, action in value.items():
        if not isinstance(target, str) or p.column_reference(target) is None:
            raise ctx.error(
                key, value, "is not allowed; its key must be the primary key, a column or '(a, b)'"
            )
        parsed[target] = p.enum_value(action, OnConflict, f"{key}.{target}", ctx)
    return parsed


# --------------------------------------------------------------------------------------------------
# acceleration.params of the DuckDB engine (validated; the accelerator acts on them)
# --------------------------------------------------------------------------------------------------

DUCKDB_PARAMS = Section(
    "acceleration.params",
    (
        SpiceField("duckdb_file", parse=p.file_path),
        SpiceField("duckdb_memory_limit", parse=p.memory_limit),
        # Applied by accelerator.duckdb_params (connection settings, sort, ANALYZE, the full-refresh write).
        SpiceField("duckdb_preserve_insertion_order", parse=p.string_boolean),
        SpiceField("on_refresh_sort_columns", parse=p.sort_columns),
        SpiceField("on_refresh_recompute_statistics", parse=p.enabled_disabled),
        SpiceField(
            "on_full_refresh",
            # swap_file: the name of replace_file in earlier Spice 2 builds.
            parse=p.choice("reuse_file", "replace_file", "checkpoint_file", "swap_file"),
            since=SpiceVersion.V2,
        ),
        ignored("duckdb_data_dir", "DuckDB files live in [accel] data_dir, or params.duckdb_file"),
        ignored("connection_pool_size", "each refresh opens its own DuckDB connection"),
        ignored(
            "duckdb_index_scan_percentage", "it tunes Spice's queries, which this provider does not serve"
        ),
        ignored(
            "duckdb_index_scan_max_count", "it tunes Spice's queries, which this provider does not serve"
        ),
        ignored("optimizer_duckdb_aggregate_pushdown", "it tunes Spice's query federation, not served here"),
        ignored("partition_mode", "partition_by is not applied by this provider"),
    ),
    rejects_unknown=False,  # params are free-form per engine in Spice: unknown ones get a notice
)

# acceleration.params of the SQLite engine (Spice's keys)
SQLITE_PARAMS = Section(
    "acceleration.params",
    (
        SpiceField("sqlite_file", parse=p.file_path),
        SpiceField("busy_timeout", parse=p.duration()),
    ),
    rejects_unknown=False,
)

# acceleration.params of the PostgreSQL engine (Spice's keys; pg_schema and postgres_conn_id, an
# Airflow connection whose fields the explicit pg_* params override, are this provider's own)
POSTGRES_PARAMS = Section(
    "acceleration.params",
    (
        SpiceField("pg_host", parse=p.text("a host name")),
        SpiceField("pg_port", parse=p.port),
        SpiceField("pg_db", parse=p.text("a database name")),
        SpiceField("pg_user", parse=p.text("a user name")),
        SpiceField("pg_pass", parse=p.optional_string),
        SpiceField("pg_sslmode", parse=p.choice("verify-full", "verify-ca", "require", "prefer", "disable")),
        SpiceField("pg_sslrootcert", parse=p.file_path),
        SpiceField("pg_schema", parse=p.text("a schema name")),
        SpiceField("postgres_conn_id", parse=p.text("an Airflow connection id")),
        ignored("connection_pool_size", "each refresh opens its own PostgreSQL connection"),
    ),
    rejects_unknown=False,
)

#: The params section of each engine (arrow is accelerated as a DuckDB file).
ENGINE_PARAMS = {
    "duckdb": DUCKDB_PARAMS,
    "arrow": DUCKDB_PARAMS,
    "sqlite": SQLITE_PARAMS,
    "postgres": POSTGRES_PARAMS,
}

# --------------------------------------------------------------------------------------------------
# The acceleration block
# --------------------------------------------------------------------------------------------------

_SNAPSHOTS = "the snapshot is restored as Spice restores it; its expiry is not reset"

ACCELERATION = Section(
    "acceleration",
    (
        SpiceField("enabled", parse=p.boolean, default=True),
        SpiceField("engine", parse=p.enum(Engine), default=Engine.DUCKDB),
        SpiceField("mode", parse=p.enum(AccelerationMode), default=AccelerationMode.FILE),
        # Declared before refresh_mode: override fields are listed in this order (API, form, errors).
        SpiceField(
            "refresh_sql",
            parse=p.dataset_sql("refresh"),
            on_demand=OnDemand(
                parse=p.override_sql,
                to_conf=p.conf_same,
                api_type=str,
                api_help="The SQL statement used for this refresh. Defaults to the `refresh_sql` specified "
                "in the spicepod, if any.",
                title="Refresh SQL",
                form_help="Optional filter for this run only, e.g. SELECT * FROM {dataset} WHERE ... "
                "Only column lists, WHERE and LIMIT are allowed. Empty keeps the dataset's refresh_sql.",
                form_format="accel-refresh-sql:{dataset}",
                example="SELECT * FROM taxi_trips WHERE tip_amount > 10.0",
            ),
        ),
        SpiceField(
            "refresh_mode",
            parse=p.enum(RefreshMode),
            default=RefreshMode.FULL,
            rules=(_append_needs_time_column,),
            on_demand=OnDemand(
                parse=p.override_enum(RefreshMode, ON_DEMAND_MODES),
                to_conf=p.conf_enum,
                api_type=RefreshMode,
                api_help="The refresh mode to use for this refresh. Defaults to the `refresh_mode` specified "
                "in the spicepod, or `full`. Only `full` and `append` can be refreshed on demand.",
                title="Refresh mode",
                form_help="full replaces the accelerated table; append adds rows newer than the "
                "watermark (max of the time column) minus refresh_append_overlap.",
                form_enum=tuple(m.value for m in ON_DEMAND_MODES),
                form_default=lambda a: a.refresh_mode.value if a.refresh_mode in ON_DEMAND_MODES else "full",
                example="full",
            ),
        ),
        SpiceField("refresh_check_interval", parse=p.duration()),
        SpiceField("refresh_cron", parse=p.cron, rules=(_one_schedule,)),
        SpiceField("refresh_data_window", parse=p.duration(), rules=(_window_needs_time_column,)),
        SpiceField("refresh_append_overlap", parse=p.duration(allow_zero=True)),
        SpiceField("refresh_retry_enabled", parse=p.boolean, default=True),
        SpiceField("refresh_retry_max_attempts", parse=p.positive_int),
        SpiceField("refresh_jitter_enabled", parse=p.boolean, default=False),
        SpiceField(
            "refresh_jitter_max",
            parse=p.duration(),
            on_demand=OnDemand(
                parse=p.override_duration,
                to_conf=p.conf_duration,
                api_type=str,
                api_help="The maximum amount of jitter to add to the refresh. Defaults to the "
                "`refresh_jitter_max` specified in the spicepod, or 10% of the `refresh_check_interval`.",
                title="Jitter max",
                form_help="Optional maximum random delay before this refresh starts, e.g. 10s or 1m.",
                form_format="accel-duration",
                example="10s",
            ),
        ),
        SpiceField("retention_check_enabled", parse=p.boolean, default=False, rules=(_retention_complete,)),
        SpiceField("retention_period", parse=p.duration()),
        SpiceField("retention_check_interval", parse=p.duration()),
        SpiceField("retention_sql", parse=p.dataset_sql("retention")),  # accelerator.retention
        SpiceField("primary_key", parse=p.primary_key, default=()),
        SpiceField("indexes", parse=p.indexes(IndexKind), default={}),  # accelerator.indexes
        SpiceField("on_conflict", parse=_on_conflict, default={}, rules=(_conflict_targets,)),
        SpiceField("params", parse=p.params, default={}, rules=(_sort_columns_alone,)),
        ignored(
            "refresh_on_startup", "Airflow runs each DAG's first load when it is deployed, then on schedule"
        ),
        ignored("on_zero_results", "this provider serves no queries, so there is no source to fall back to"),
        ignored("ready_state", "readiness is the status of the dataset's latest refresh here"),
        ignored("metrics", "acceleration metrics are the refresh summaries and Airflow's own metrics here"),
        ignored("partition_by", "the accelerated DuckDB table is not partitioned by this provider"),
        ignored(
            "write_mode",
            "this provider accepts no writes, so there is nothing to write through or back",
            since=SpiceVersion.V2,
            parse=p.choice("write_through", "write_back"),
        ),
        ignored(
            "storage_profile",
            "DuckDB files are written the same way on every storage here",
            since=SpiceVersion.V2,
            parse=p.choice(
                "auto",
                "local_ssd",
                "ssd",
                "nvme",
                "ebs",
                "azure_disk",
                "managed_disk",
                "network_disk",
                "tmpfs",
                "ram",
                "ramdisk",
                "ramfs",
                "memory",
            ),
        ),
        ignored(
            "maintained_aggregates", "aggregates are not maintained by this provider", since=SpiceVersion.V2
        ),
        # Read and validated by spicepod.snapshots (apply_snapshot_settings), with the top-level block.
        SpiceField("snapshots"),
        SpiceField("snapshots_trigger"),
        SpiceField("snapshots_trigger_threshold"),
        SpiceField("snapshots_compaction"),
        SpiceField("snapshots_creation_policy"),
        ignored(
            "snapshots_reset_expiry_on_load",
            _SNAPSHOTS,
            since=SpiceVersion.V2,
            parse=p.enabled_disabled,
        ),
    ),
)

# --------------------------------------------------------------------------------------------------
# A dataset
# --------------------------------------------------------------------------------------------------

DATASET = Section(
    "dataset",
    (
        SpiceField(
            "from",
            parse=p.text(
                "allowed; from is required: the source URI, such as file:data.parquet, s3://bucket/prefix/ "
                "or postgres:schema.table"
            ),
            attr="from_",
        ),
        SpiceField("name", parse=p.text("a non-empty string")),
        SpiceField("description", parse=p.optional_string),
        SpiceField("params", parse=p.params, default={}),
        SpiceField("time_column", parse=p.text("a column name (a non-empty string)")),
        SpiceField("time_format", parse=p.enum(TimeFormat)),
        SpiceField(
            "on_schema_change",
            parse=p.enum(OnSchemaChange),
            default=OnSchemaChange.BLOCK,
            since=SpiceVersion.V2,
        ),  # accelerator.schema_change, for refreshes and snapshot replicas
        SpiceField("acceleration"),  # parsed by the ACCELERATION section
        ignored(
            "access",
            "this provider accepts no writes; the dataset is accelerated for reading",
            since=SpiceVersion.V2,
            parse=p.choice("read", "read_write", "read_write_create"),
        ),
        ignored(
            "mode",
            "this provider accepts no writes; the dataset is accelerated for reading",
            parse=p.choice("read", "read_write"),
        ),
        ignored(
            "schema_inference", "the schema is read from the source at each refresh", since=SpiceVersion.V2
        ),
        ignored("metadata", "dataset metadata is not used by a refresh"),
        ignored("columns", "column descriptions and embeddings are not used by a refresh"),
        ignored("has_metadata_table", "metadata tables are not served here"),
        ignored("replication", "replication is not served here"),
        ignored("time_partition_column", "partition pruning is not used by a refresh here"),
        ignored("time_partition_format", "partition pruning is not used by a refresh here"),
        ignored("embeddings", "embeddings are not computed by this provider"),
        ignored("vectors", "vector search is not served by this provider"),
        ignored("dependsOn", "each dataset's DAG runs on its own schedule"),
        ignored("invalid_type_action", "columns of unsupported types fail the refresh, naming them"),
        ignored("unsupported_type_action", "columns of unsupported types fail the refresh, naming them"),
        ignored("ready_state", "readiness is the status of the dataset's latest refresh here"),
        ignored("metrics", "dataset metrics are the refresh summaries and Airflow's own metrics here"),
        ignored("check_availability", "this provider serves no federated queries to check"),
    ),
)

# --------------------------------------------------------------------------------------------------
# The top level (Spice ignores unknown top-level keys: they only get a notice)
# --------------------------------------------------------------------------------------------------

_NOT_SERVED = "this provider accelerates datasets only"

TOP_LEVEL = Section(
    "spicepod",
    (
        SpiceField("version"),
        SpiceField("kind"),
        SpiceField("name"),
        SpiceField("datasets"),
        SpiceField("runtime"),  # runtime.auth.api-key is read (spicepod.runtime); the rest has no effect
        ignored("metadata", "spicepod metadata is not used"),
        ignored("secrets", "${secrets:...} resolve through Airflow's secrets backends here"),
        ignored("extensions", _NOT_SERVED),
        ignored("management", _NOT_SERVED),
        SpiceField("snapshots"),  # read by spicepod.snapshots
        ignored("catalogs", _NOT_SERVED),
        ignored("views", _NOT_SERVED),
        ignored("models", _NOT_SERVED),
        ignored("embeddings", _NOT_SERVED),
        ignored("evals", _NOT_SERVED),
        ignored("rerankers", _NOT_SERVED),
        ignored("search_engines", _NOT_SERVED),
        ignored("tools", _NOT_SERVED),
        ignored("workers", _NOT_SERVED),
        ignored("functions", _NOT_SERVED),
        ignored("dependencies", _NOT_SERVED),
    ),
    rejects_unknown=False,
)

SECTIONS: tuple[Section, ...] = (TOP_LEVEL, DATASET, ACCELERATION, DUCKDB_PARAMS)


@functools.cache  # SECTIONS is immutable; every override check and trigger form asks
def on_demand_fields() -> tuple[SpiceField, ...]:
    """The fields an on-demand refresh may override, in declaration order."""
    return tuple(f for section in SECTIONS for f in section if f.on_demand is not None)


def on_demand(field: SpiceField) -> OnDemand:
    assert field.on_demand is not None
    return field.on_demand


def form_default(field: SpiceField, acceleration: Acceleration) -> Any:
    spec = on_demand(field)
    return spec.form_default(acceleration) if spec.form_default else None
