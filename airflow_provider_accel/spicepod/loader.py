"""Read a ``spicepod.yaml`` into the typed, validated :mod:`~airflow_provider_accel.spicepod.model`.

Every invalid value is a :class:`SpicepodError` whose message names the dataset, the field and what
is allowed, and whose ``.dataset`` / ``.field`` attributes say the same for code. Validation happens
here, once, so that DAG files, operators and the API can trust the model without re-checking it.

Unknown keys are rejected, as Spice rejects them (its structs use ``deny_unknown_fields``). Keys
that real Spice spicepods use but this project does not act on (models, views, indexes, ...) are
accepted and ignored, so that a spicepod written for Spice loads here unchanged. The lists below
follow the Spice runtime's ``crates/spicepod`` definitions.

``${secrets:...}`` / ``${env:...}`` placeholders in params are kept unresolved in the model: the
model is built in the DAG processor and the API server, and secret values must only be resolved
where they are used (see :mod:`airflow_provider_accel.spicepod.secrets`).
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Mapping
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml

from airflow_provider_accel.exceptions import SpicepodError
from airflow_provider_accel.spicepod.durations import DURATION_HELP, parse_duration
from airflow_provider_accel.spicepod.model import (
    Acceleration,
    AccelerationMode,
    Dataset,
    Engine,
    OnConflict,
    RefreshMode,
    Spicepod,
    TimeFormat,
    dag_id_for,
)
from airflow_provider_accel.spicepod.snapshots import ACCELERATION_SNAPSHOT_KEYS, apply_snapshot_settings

if TYPE_CHECKING:
    import os

log = logging.getLogger(__name__)

_E = TypeVar("_E", bound=StrEnum)

#: ``version:`` values accepted. ``v1beta1`` is still seen in the wild; ``v2`` is what current Spice
#: releases write by default (its dataset schema is the same for the part read here).
SUPPORTED_VERSIONS: tuple[str, ...] = ("v1beta1", "v1", "v2")

_TOP_LEVEL_USED = frozenset({"version", "kind", "name", "datasets", "snapshots"})
#: Top-level sections of Spice's ``SpicepodDefinition`` that this provider has no use for.
_TOP_LEVEL_IGNORED = frozenset(
    {
        "runtime",
        "management",
        "extensions",
        "secrets",
        "metadata",
        "catalogs",
        "views",
        "models",
        "embeddings",
        "evals",
        "rerankers",
        "search_engines",
        "tools",
        "workers",
        "functions",
        "dependencies",
    }
)

_DATASET_USED = frozenset(
    {"from", "name", "description", "params", "time_column", "time_format", "acceleration"}
)
#: Dataset keys of Spice's ``Dataset`` that do not change what a refresh does here.
_DATASET_IGNORED = frozenset(
    {
        "metadata",
        "columns",
        "mode",  # read | read_write: Spice's write-back, not acceleration
        "has_metadata_table",
        "replication",
        "time_partition_column",
        "time_partition_format",
        "embeddings",
        "dependsOn",
        "invalid_type_action",
        "unsupported_type_action",
        "ready_state",
        "metrics",
        "vectors",
        "check_availability",
    }
)

_ACCELERATION_USED = (
    frozenset(
        {
            "enabled",
            "engine",
            "mode",
            "refresh_mode",
            "refresh_check_interval",
            "refresh_cron",
            "refresh_sql",
            "refresh_data_window",
            "refresh_append_overlap",
            "refresh_retry_enabled",
            "refresh_retry_max_attempts",
            "refresh_jitter_enabled",
            "refresh_jitter_max",
            "retention_check_enabled",
            "retention_period",
            "retention_check_interval",
            "primary_key",
            "on_conflict",
            "params",
        }
    )
    | ACCELERATION_SNAPSHOT_KEYS
)
#: Acceleration keys of Spice's ``Acceleration`` that this provider does not act on.
_ACCELERATION_IGNORED = frozenset(
    {
        "refresh_on_startup",
        "retention_sql",
        "on_zero_results",
        "ready_state",  # deprecated in Spice in favour of the dataset-level key
        "indexes",
        "metrics",
        "partition_by",
    }
)
#: Ignored keys whose absence of effect a user would not expect: they get a logged notice.
_ACCELERATION_IGNORED_NOTICE = frozenset({"retention_sql", "partition_by"})

_SCALAR_TYPES = (str, int, float, bool)


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that rejects a key repeated in one mapping instead of keeping the last.

    Spice's YAML parser rejects duplicate keys; silently keeping the second ``acceleration:`` block
    would accelerate a dataset differently from what its author reads at the top.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *defaults` merges are expanded (and may be overridden) by the base class
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str | int | float | bool) and key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r}",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


# --------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------


def load_spicepod(path: str | os.PathLike[str]) -> Spicepod:
    """Read and validate the spicepod at ``path``; every problem is a :class:`SpicepodError`."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpicepodError(
            f"Spicepod file {file} does not exist. Create it, or point [accel] spicepod_path "
            "(AIRFLOW__ACCEL__SPICEPOD_PATH) at your spicepod.yaml."
        ) from None
    except IsADirectoryError:
        raise SpicepodError(
            f"Spicepod path {file} is a directory. Point [accel] spicepod_path at the spicepod.yaml "
            "file inside it."
        ) from None
    except (OSError, UnicodeDecodeError) as err:
        raise SpicepodError(
            f"Spicepod file {file} cannot be read ({err}). Check that it is a UTF-8 text file "
            "readable by the Airflow user."
        ) from err
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass: no Python tags
    except yaml.YAMLError as err:
        # The YAML error already says line and column; keep it whole.
        raise SpicepodError(
            f"Spicepod file {file} is not valid YAML: {err}. Fix the syntax (indentation, colons, "
            "quotes) at the position shown."
        ) from err
    try:
        return parse_spicepod(data, path=str(file))
    except SpicepodError as err:
        # A note, not a rewritten message: callers may match on the message, tracebacks show both.
        err.add_note(f"in spicepod file {file}")
        raise


def parse_spicepod(data: Any, *, path: str | None = None) -> Spicepod:
    """Validate already-parsed YAML (a mapping) and build the :class:`Spicepod`."""
    if not isinstance(data, Mapping):
        what = "empty" if data is None else f"a {type(data).__name__}, not a mapping"
        raise SpicepodError(
            f"Spicepod{f' {path}' if path else ''} is {what}. A spicepod is a YAML mapping with "
            "version, kind, name and datasets."
        )
    _check_keys(data, _TOP_LEVEL_USED, _TOP_LEVEL_IGNORED, dataset=None, prefix="")

    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise SpicepodError(
            f"Spicepod: name {name!r} is not allowed; name is required and must be a non-empty string.",
            field="name",
        )
    version = data.get("version")
    if version not in SUPPORTED_VERSIONS:
        raise SpicepodError(
            f"Spicepod {name}: version {version!r} is not supported; use one of "
            f"{', '.join(SUPPORTED_VERSIONS)}.",
            field="version",
        )
    kind = data.get("kind")
    if kind != "Spicepod":
        raise SpicepodError(
            f"Spicepod {name}: kind {kind!r} is not allowed; kind must be Spicepod.", field="kind"
        )

    raw_datasets = data.get("datasets")
    if raw_datasets is None:
        raw_datasets = []
    if not isinstance(raw_datasets, list):
        raise SpicepodError(
            f"Spicepod {name}: datasets must be a YAML list of dataset mappings, "
            f"not a {type(raw_datasets).__name__}.",
            field="datasets",
        )
    datasets = tuple(_parse_dataset(raw, index) for index, raw in enumerate(raw_datasets))
    _check_unique(datasets)
    spicepod = Spicepod(name=name, version=version, kind=kind, datasets=datasets, path=path)
    return apply_snapshot_settings(data, spicepod)


# --------------------------------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------------------------------


def _parse_dataset(raw: Any, index: int) -> Dataset:
    where = f"datasets[{index}]"
    if not isinstance(raw, Mapping):
        raise SpicepodError(
            f"Dataset at {where}: a dataset must be a mapping with at least from and name, "
            f"not a {type(raw).__name__}.",
            field=where,
        )
    if "ref" in raw and "from" not in raw:
        # Spice allows `- ref: datasets/x` (the dataset in another file); not resolved here.
        raise SpicepodError(
            f"Dataset at {where}: ref {raw['ref']!r} (a dataset defined in another file) is not "
            "supported; define the dataset inline with from and name.",
            field="ref",
        )
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise SpicepodError(
            f"Dataset at {where}: name {name!r} is not allowed; every dataset needs a name, "
            "a non-empty string.",
            field="name",
        )
    if name != name.strip():
        raise SpicepodError(
            f"Dataset {name!r}: name has leading or trailing spaces; remove them.",
            dataset=name,
            field="name",
        )
    _check_keys(raw, _DATASET_USED, _DATASET_IGNORED, dataset=name, prefix="")

    source = raw.get("from")
    if not isinstance(source, str) or not source.strip():
        raise _error(
            name,
            "from",
            source,
            "is not allowed; from is required: the source URI, such as file:data.parquet, "
            "s3://bucket/prefix/ or postgres:schema.table",
        )
    description = raw.get("description")
    if description is not None and not isinstance(description, str):
        raise _error(name, "description", description, "is not a string")

    params = _params(raw.get("params"), name, "params")

    time_column = raw.get("time_column")
    if time_column is not None and (not isinstance(time_column, str) or not time_column.strip()):
        raise _error(name, "time_column", time_column, "is not a column name (a non-empty string)")

    time_format = _enum(raw.get("time_format"), TimeFormat, name, "time_format")

    acceleration = None
    if raw.get("acceleration") is not None:
        acceleration = _parse_acceleration(raw["acceleration"], name, time_column)

    return Dataset(
        from_=source.strip(),
        name=name,
        description=description,
        params=params,
        time_column=time_column,
        time_format=time_format,
        acceleration=acceleration,
    )


def _parse_acceleration(raw: Any, dataset: str, time_column: str | None) -> Acceleration:
    if not isinstance(raw, Mapping):
        raise _error(dataset, "acceleration", raw, "is not a mapping of acceleration settings")
    _check_keys(raw, _ACCELERATION_USED, _ACCELERATION_IGNORED, dataset=dataset, prefix="acceleration.")
    for key in sorted(_ACCELERATION_IGNORED_NOTICE & raw.keys()):
        log.warning(
            "Dataset %s: acceleration.%s is not applied by this provider; it is ignored.", dataset, key
        )

    def field(key: str) -> str:
        return f"acceleration.{key}"

    enabled = _bool(raw.get("enabled"), True, dataset, field("enabled"))

    engine_raw = raw.get("engine")
    if engine_raw is not None and (
        not isinstance(engine_raw, str) or engine_raw.strip().lower() not in {e.value for e in Engine}
    ):
        raise _error(
            dataset,
            field("engine"),
            engine_raw,
            "is not supported; only duckdb is supported (arrow is accepted and accelerated as a DuckDB file)",
        )
    engine = _enum(engine_raw, Engine, dataset, field("engine")) or Engine.DUCKDB
    mode = _enum(raw.get("mode"), AccelerationMode, dataset, field("mode")) or AccelerationMode.FILE
    if engine is Engine.ARROW or mode is AccelerationMode.MEMORY:
        # In-memory acceleration cannot outlive one Airflow task process, so it would be empty for
        # every reader: a DuckDB file is the only meaningful equivalent.
        log.info(
            "Dataset %s: acceleration engine %s, mode %s is accelerated as a DuckDB file here "
            "(in-memory acceleration has no meaning across Airflow task processes).",
            dataset,
            engine.value,
            mode.value,
        )

    refresh_mode = (
        _enum(raw.get("refresh_mode"), RefreshMode, dataset, field("refresh_mode")) or RefreshMode.FULL
    )

    interval = _duration(raw.get("refresh_check_interval"), dataset, field("refresh_check_interval"))
    cron = raw.get("refresh_cron")
    if cron is not None:
        cron = _cron(cron, dataset, field("refresh_cron"))
        if interval is not None:
            raise SpicepodError(
                f"Dataset {dataset}: acceleration.refresh_check_interval and acceleration.refresh_cron "
                "are both set; use one of them to schedule refreshes.",
                dataset=dataset,
                field=field("refresh_cron"),
            )

    data_window = _duration(raw.get("refresh_data_window"), dataset, field("refresh_data_window"))
    overlap = _duration(
        raw.get("refresh_append_overlap"), dataset, field("refresh_append_overlap"), allow_zero=True
    )
    retry_enabled = _bool(raw.get("refresh_retry_enabled"), True, dataset, field("refresh_retry_enabled"))
    max_attempts = raw.get("refresh_retry_max_attempts")
    if max_attempts is not None and (
        isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1
    ):
        raise _error(
            dataset,
            field("refresh_retry_max_attempts"),
            max_attempts,
            "is not allowed; it must be a positive whole number (leave it out for unlimited retries)",
        )
    jitter_enabled = _bool(raw.get("refresh_jitter_enabled"), False, dataset, field("refresh_jitter_enabled"))
    jitter_max = _duration(raw.get("refresh_jitter_max"), dataset, field("refresh_jitter_max"))

    retention_enabled = _bool(
        raw.get("retention_check_enabled"), False, dataset, field("retention_check_enabled")
    )
    retention_period = _duration(raw.get("retention_period"), dataset, field("retention_period"))
    retention_interval = _duration(
        raw.get("retention_check_interval"), dataset, field("retention_check_interval")
    )

    primary_key = _primary_key(raw.get("primary_key"), dataset)
    on_conflict = _on_conflict(raw.get("on_conflict"), primary_key, dataset)
    params = _params(raw.get("params"), dataset, field("params"))
    duckdb_file = params.get("duckdb_file")
    if duckdb_file is not None and (not isinstance(duckdb_file, str) or not duckdb_file.strip()):
        raise _error(dataset, field("params.duckdb_file"), duckdb_file, "is not a file path")

    # Rules across fields: each names the field that needs the missing piece.
    if refresh_mode is RefreshMode.APPEND and time_column is None:
        raise SpicepodError(
            f"Dataset {dataset}: acceleration.refresh_mode append needs the dataset's time_column "
            "(the watermark column). Set time_column, or use refresh_mode full; an append without "
            "time_column is only possible as an on-demand refresh.",
            dataset=dataset,
            field=field("refresh_mode"),
        )
    if data_window is not None and time_column is None:
        raise SpicepodError(
            f"Dataset {dataset}: acceleration.refresh_data_window needs the dataset's time_column "
            "(the column the window is measured on). Set time_column or remove the window.",
            dataset=dataset,
            field=field("refresh_data_window"),
        )
    if retention_enabled and (time_column is None or retention_period is None):
        missing = " and ".join(
            part
            for part, absent in (
                ("time_column", time_column is None),
                ("acceleration.retention_period", retention_period is None),
            )
            if absent
        )
        raise SpicepodError(
            f"Dataset {dataset}: acceleration.retention_check_enabled needs {missing}. Set "
            f"{missing}, or set retention_check_enabled to false.",
            dataset=dataset,
            field=field("retention_check_enabled"),
        )

    refresh_sql = raw.get("refresh_sql")
    if refresh_sql is not None:
        refresh_sql = _refresh_sql(refresh_sql, dataset)

    return Acceleration(
        enabled=enabled,
        engine=engine,
        mode=mode,
        refresh_mode=refresh_mode,
        refresh_check_interval=interval,
        refresh_cron=cron,
        refresh_sql=refresh_sql,
        refresh_data_window=data_window,
        refresh_append_overlap=overlap,
        refresh_retry_enabled=retry_enabled,
        refresh_retry_max_attempts=max_attempts,
        refresh_jitter_enabled=jitter_enabled,
        refresh_jitter_max=jitter_max,
        retention_check_enabled=retention_enabled,
        retention_period=retention_period,
        retention_check_interval=retention_interval,
        primary_key=primary_key,
        on_conflict=on_conflict,
        params=params,
    )


def _check_unique(datasets: tuple[Dataset, ...]) -> None:
    """Names are unique case-insensitively (Spice resolves them so) and so are their DAG ids."""
    by_name: dict[str, Dataset] = {}
    by_dag_id: dict[str, Dataset] = {}
    for dataset in datasets:
        folded = dataset.name.casefold()
        if folded in by_name:
            first = by_name[folded].name
            raise SpicepodError(
                f"Dataset {dataset.name}: name is used twice ({first} and {dataset.name}; dataset names "
                "are matched case-insensitively). Give each dataset its own name.",
                dataset=dataset.name,
                field="name",
            )
        by_name[folded] = dataset
        dag_id = dag_id_for(dataset.name)
        if dag_id in by_dag_id:
            first = by_dag_id[dag_id].name
            raise SpicepodError(
                f"Dataset {dataset.name}: name collides with dataset {first}: both would get the "
                f"refresh DAG id {dag_id}. Rename one of them (names differing only in characters "
                "other than letters, digits and _ map to the same DAG id).",
                dataset=dataset.name,
                field="name",
            )
        by_dag_id[dag_id] = dataset


# --------------------------------------------------------------------------------------------------
# Field validators
# --------------------------------------------------------------------------------------------------


def _error(dataset: str, field: str, value: Any, problem: str) -> SpicepodError:
    """The one message shape: ``Dataset <name>: <field> <value> <problem>.``"""
    return SpicepodError(f"Dataset {dataset}: {field} {value!r} {problem}.", dataset=dataset, field=field)


def _check_keys(
    raw: Mapping[Any, Any],
    used: frozenset[str],
    ignored: frozenset[str],
    *,
    dataset: str | None,
    prefix: str,
) -> None:
    allowed = used | ignored
    for key in raw:
        if key in allowed:
            continue
        where = f"Dataset {dataset}" if dataset is not None else "Spicepod"
        hint = difflib.get_close_matches(str(key), sorted(allowed), n=1)
        did_you_mean = f" Did you mean {hint[0]!r}?" if hint else ""
        raise SpicepodError(
            f"{where}: unknown key {prefix}{key!r}.{did_you_mean} Allowed keys"
            f"{f' in {prefix[:-1]}' if prefix else ''}: {', '.join(sorted(allowed))}.",
            dataset=dataset,
            field=f"{prefix}{key}",
        )


def _bool(value: Any, default: bool, dataset: str, field: str) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        # "false" (quoted) or 0 are truthy/ambiguous in Python: only real YAML booleans are taken.
        raise _error(dataset, field, value, "is not a boolean; write true or false (unquoted)")
    return value


def _enum(value: Any, enum: type[_E], dataset: str, field: str) -> _E | None:
    if value is None:
        return None
    allowed = [member.value for member in enum]
    if isinstance(value, str):
        wanted = value.strip().casefold()
        for member in enum:
            if member.value.casefold() == wanted:
                return member
    raise _error(dataset, field, value, f"is not allowed; use one of {', '.join(allowed)}")


def _duration(value: Any, dataset: str, field: str, *, allow_zero: bool = False) -> timedelta | None:
    if value is None:
        return None
    try:
        parsed = parse_duration(value)
    except ValueError:
        raise _error(dataset, field, value, f"is not {DURATION_HELP}") from None
    if parsed <= timedelta(0) and not allow_zero:
        raise _error(dataset, field, value, "is not allowed; it must be longer than zero")
    return parsed


def _cron(value: Any, dataset: str, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _error(dataset, field, value, "is not a cron expression such as '0 * * * *' (a quoted string)")
    expression = " ".join(value.split())
    expanded = expression
    if expression.startswith("@"):
        # The presets Airflow's cron timetables accept (@hourly, @daily, ... @quarterly).
        from airflow.utils.dates import cron_presets

        if expression not in cron_presets:
            raise _error(dataset, field, value, f"is not a cron preset; use one of {', '.join(cron_presets)}")
        expanded = cron_presets[expression]
    if len(expanded.split()) != 5:
        # croniter reads a 6th field as seconds at the end, Spice's cron reads seconds first: a
        # 6- or 7-field expression would fire at different times here than in Spice.
        raise _error(
            dataset,
            field,
            value,
            "is not a 5-field cron expression (minute hour day-of-month month day-of-week), "
            "such as '0 * * * *'",
        )
    # croniter is what Airflow's CronTriggerTimetable validates and schedules with.
    from croniter import CroniterBadCronError, CroniterBadDateError, croniter

    try:
        croniter(expanded)
    except (CroniterBadCronError, CroniterBadDateError, ValueError) as err:
        raise _error(dataset, field, value, f"is not a valid cron expression ({err})") from None
    return expression


def _params(value: Any, dataset: str, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _error(dataset, field, value, "is not a mapping of parameter names to values")
    params: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise _error(dataset, f"{field} key", key, "is not a string")
        if item is not None and not isinstance(item, _SCALAR_TYPES):
            # Spice params are flat strings; a nested value is almost always an indentation mistake.
            raise _error(
                dataset, f"{field}.{key}", item, "is not allowed; parameter values are strings or numbers"
            )
        params[key] = item
    return params


def _split_key(text: str) -> tuple[str, ...] | None:
    """``id`` -> ``("id",)``, ``(a, b)`` -> ``("a", "b")``; ``None`` when malformed."""
    text = text.strip()
    if text.startswith("(") or text.endswith(")"):
        if not (text.startswith("(") and text.endswith(")")):
            return None
        parts = [part.strip() for part in text[1:-1].split(",")]
    else:
        parts = [text]
    if not parts or any(not part or any(c in part for c in "(),") for part in parts):
        return None
    return tuple(parts)


def _primary_key(value: Any, dataset: str) -> tuple[str, ...]:
    field = "acceleration.primary_key"
    if value is None:
        return ()
    names: tuple[str, ...] | None
    if isinstance(value, str):
        names = _split_key(value)
    elif isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        names = tuple(item.strip() for item in value)
        if any(not name or any(c in name for c in "(),") for name in names):
            names = None
    else:
        names = None
    if names is None:
        raise _error(
            dataset,
            field,
            value,
            "is not a primary key; write a column name (id), a composite key "
            "'(a, b)', or a YAML list of column names",
        )
    if len(set(names)) != len(names):
        raise _error(dataset, field, value, "names a column twice")
    return names


def _on_conflict(value: Any, primary_key: tuple[str, ...], dataset: str) -> dict[str, OnConflict]:
    field = "acceleration.on_conflict"
    if value is None:
        return {}
    if not primary_key:
        raise SpicepodError(
            f"Dataset {dataset}: acceleration.on_conflict needs acceleration.primary_key (the key a "
            "conflict is detected on). Set primary_key or remove on_conflict.",
            dataset=dataset,
            field=field,
        )
    if not isinstance(value, Mapping) or len(value) != 1:
        raise _error(
            dataset,
            field,
            value,
            "is not allowed; write one entry, the primary key mapped to drop or upsert, such as {id: upsert}",
        )
    ((key, action),) = value.items()
    written_key = ", ".join(primary_key) if len(primary_key) > 1 else primary_key[0]
    expected = f"({written_key})" if len(primary_key) > 1 else written_key
    if not isinstance(key, str) or _split_key(key) != primary_key:
        raise _error(dataset, field, value, f"is not allowed; its key must be the primary key, {expected}")
    conflict = _enum(action, OnConflict, dataset, f"{field}.{key}")
    if conflict not in (OnConflict.DROP, OnConflict.UPSERT):  # the upsert_dedup* actions: not yet
        raise _error(dataset, f"{field}.{key}", action, "is not allowed; use one of drop, upsert")
    return {key: conflict}


def _refresh_sql(value: Any, dataset: str) -> str:
    field = "acceleration.refresh_sql"
    if not isinstance(value, str) or not value.strip():
        raise _error(dataset, field, value, f"is not a SQL query such as SELECT * FROM {dataset} WHERE ...")
    # Imported here: the validator pulls in a SQL parser that only spicepods with refresh_sql need.
    from airflow_provider_accel.exceptions import RefreshSqlError
    from airflow_provider_accel.sql.refresh_sql import validate_refresh_sql

    try:
        validate_refresh_sql(value, dataset)
    except RefreshSqlError as err:
        raise SpicepodError(
            f"Dataset {dataset}: acceleration.refresh_sql is not allowed: {err}",
            dataset=dataset,
            field=field,
        ) from err
    return value


__all__ = ["SUPPORTED_VERSIONS", "load_spicepod", "parse_spicepod"]
