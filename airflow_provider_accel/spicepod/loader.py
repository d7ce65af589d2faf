"""Read a ``spicepod.yaml`` into the typed, validated :mod:`~airflow_provider_accel.spicepod.model`.

What is read, and how, is declared once per field in :mod:`~airflow_provider_accel.spicepod.fields`;
this module walks those declarations. Every invalid value is a :class:`SpicepodError` whose message
names the dataset, the field and what is allowed, and whose ``.dataset`` / ``.field`` attributes say
the same for code.

A spicepod whose YAML parses always loads, as in Spice: a dataset that cannot be served (a bad
field, an engine or connector not served here, a missing extra) is left out of ``datasets`` and
listed in ``Spicepod.dataset_errors`` with its reason, so the others still get their DAGs. With
``strict=True`` (``[accel] strict_spicepod``) the first such dataset refuses the whole spicepod.

Unknown top-level keys are ignored with a notice (Spice's top-level struct ignores them; pods park
YAML anchors under ``definitions:`` or ``defaults:``); unknown dataset and acceleration keys are
errors (Spice's structs deny them). Accepted keys that this provider does not act on get a notice
naming them and why, in ``Spicepod.notices`` and this module's log.

``${secrets:...}`` / ``${env:...}`` placeholders in params are kept unresolved in the model: the
model is built in the DAG processor and the API server, and secret values must only be resolved
where they are used (see :mod:`airflow_provider_accel.spicepod.secrets`).
"""

from __future__ import annotations

import copy
import difflib
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from airflow_provider_accel.exceptions import SpicepodError
from airflow_provider_accel.sources.registry import unservable_reason
from airflow_provider_accel.spicepod import fields as f
from airflow_provider_accel.spicepod.model import (
    Acceleration,
    AccelerationMode,
    Dataset,
    DatasetError,
    Engine,
    Spicepod,
    dag_id_for,
)
from airflow_provider_accel.spicepod.parsers import FieldContext, resolve_ref
from airflow_provider_accel.spicepod.runtime import parse_runtime_auth
from airflow_provider_accel.spicepod.snapshots import apply_snapshot_settings

if TYPE_CHECKING:
    import os

log = logging.getLogger(__name__)

#: ``version:`` values accepted. ``v1beta1`` is still seen in the wild; ``v2`` is what Spice 2.x
#: writes (its dataset schema is the same for the part read here).
SUPPORTED_VERSIONS: tuple[str, ...] = ("v1beta1", "v1", "v2")

#: Spice's other acceleration engines: a dataset on one of them errors alone, the pod still loads.
NOT_YET_SUPPORTED_ENGINES: tuple[str, ...] = ("turso", "cayenne", "ducklake")


#: libyaml's C scanner and parser when PyYAML was built with it (the wheels are): about 5x faster on
#: a pod of hundreds of datasets, where the pure-Python scanner was the parse's largest single cost.
#: The constructor (and so the duplicate-key check below) is the same Python code either way.
_SafeBase: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _UniqueKeyLoader(_SafeBase):  # type: ignore[misc]  # PyYAML ships no type hints
    """A safe YAML loader that rejects a key repeated in one mapping instead of keeping the last.

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
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


# --------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------


def _read_yaml(file: Path, what: str = "Spicepod file") -> Any:
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpicepodError(
            f"{what} {file} does not exist. Create it, or point [accel] spicepod_path "
            "(AIRFLOW__ACCEL__SPICEPOD_PATH) at your spicepod.yaml."
        ) from None
    except IsADirectoryError:
        raise SpicepodError(
            f"Spicepod path {file} is a directory. Point [accel] spicepod_path at the spicepod.yaml "
            "file inside it."
        ) from None
    except (OSError, UnicodeDecodeError) as err:
        raise SpicepodError(
            f"{what} {file} cannot be read ({err}). Check that it is a UTF-8 text file "
            "readable by the Airflow user."
        ) from err
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass: no Python tags
    except yaml.YAMLError as err:
        # The YAML error already says line and column; keep it whole.
        raise SpicepodError(
            f"{what} {file} is not valid YAML: {err}. Fix the syntax (indentation, colons, "
            "quotes) at the position shown."
        ) from err


def load_spicepod(path: str | os.PathLike[str], *, strict: bool | None = None) -> Spicepod:
    """Read and validate the spicepod at ``path``; a problem of the whole pod is a :class:`SpicepodError`.

    ``strict`` (default ``[accel] strict_spicepod``) makes a dataset that cannot be served an error
    of the whole pod instead of an entry of ``dataset_errors``.
    """
    file = Path(path)
    data = _read_yaml(file)
    try:
        return parse_spicepod(data, path=str(file), strict=strict, base_dir=file.parent)
    except SpicepodError as err:
        # A note, not a rewritten message: callers may match on the message, tracebacks show both.
        err.add_note(f"in spicepod file {file}")
        raise


def parse_spicepod(
    data: Any, *, path: str | None = None, strict: bool | None = None, base_dir: Path | None = None
) -> Spicepod:
    """Validate already-parsed YAML (a mapping) and build the :class:`Spicepod`.

    ``base_dir`` is where ``- ref:`` datasets are resolved (the spicepod's directory).
    """
    if strict is None:
        from airflow_provider_accel.config import strict_spicepod

        strict = strict_spicepod()
    if not isinstance(data, Mapping):
        what = "empty" if data is None else f"a {type(data).__name__}, not a mapping"
        raise SpicepodError(
            f"Spicepod{f' {path}' if path else ''} is {what}. A spicepod is a YAML mapping with "
            "version, kind, name and datasets."
        )
    notices: list[str] = []
    _top_level_notices(data, notices)

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

    datasets: list[Dataset] = []
    errors: list[DatasetError] = []
    names: dict[str, str] = {}
    dag_ids: dict[str, str] = {}
    for index, raw in enumerate(raw_datasets):
        try:
            dataset = _parse_dataset(_resolved(raw, index, base_dir), index, notices)
            _check_unique(dataset, names, dag_ids)
        except SpicepodError as err:
            if strict:
                raise
            errors.append(_dataset_error(raw, index, err))
            continue
        datasets.append(dataset)

    for notice in notices:
        log.info("%s", notice)
    api_key_auth_enabled, api_keys = parse_runtime_auth(data)
    spicepod = Spicepod(
        name=name,
        version=version,
        kind=kind,
        datasets=tuple(datasets),
        path=path,
        dataset_errors=tuple(errors),
        notices=tuple(notices),
        api_key_auth_enabled=api_key_auth_enabled,
        api_keys=api_keys,
    )
    return apply_snapshot_settings(data, spicepod, strict=strict)


def _top_level_notices(data: Mapping[Any, Any], notices: list[str]) -> None:
    for key in data:
        declared = f.TOP_LEVEL.get(str(key))
        if declared is not None:
            if declared.use is f.Use.IGNORED:
                notices.append(f"Spicepod: {key} is ignored: {declared.notice}.")
            continue
        # Spice ignores unknown top-level keys; a near miss of a key that matters gets a hint.
        hint = difflib.get_close_matches(str(key), ["version", "kind", "name", "datasets"], n=1, cutoff=0.8)
        did_you_mean = f" Did you mean {hint[0]!r}?" if hint else ""
        notices.append(
            f"Spicepod: unknown top-level key {key!r} is ignored, as Spice ignores it (YAML anchors "
            f"may live there).{did_you_mean}"
        )


def _dataset_error(raw: Any, index: int, err: SpicepodError) -> DatasetError:
    name: str | None = err.dataset
    source = ""
    if isinstance(raw, Mapping):
        if name is None and isinstance(raw.get("name"), str) and raw["name"].strip():
            name = raw["name"]
        source = str(raw["from"]) if isinstance(raw.get("from"), str) else ""
        if name is None and isinstance(raw.get("ref"), str):
            name = raw["ref"]
    return DatasetError(
        name=name or f"datasets[{index}]", from_=source or "", reason=str(err), field=err.field
    )


def _resolved(raw: Any, index: int, base_dir: Path | None) -> Any:
    """An inline dataset as it is; ``- ref: datasets/x`` read from ``datasets/x/dataset.yaml``."""
    if not isinstance(raw, Mapping) or "ref" not in raw or "from" in raw:
        return raw
    extra = sorted(str(k) for k in raw if k not in ("ref", "dependsOn"))
    if extra:
        raise SpicepodError(
            f"Dataset at datasets[{index}]: a ref entry has only ref (and dependsOn); remove "
            f"{', '.join(extra)} or define the dataset inline.",
            field="ref",
        )
    file = resolve_ref(raw["ref"], base_dir, f"datasets[{index}]")
    return _read_yaml(file, "Dataset file")


# --------------------------------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------------------------------


def _check_keys(raw: Mapping[Any, Any], section: f.Section, ctx: FieldContext) -> None:
    allowed = section.keys
    for key in raw:
        if key in allowed:
            continue
        hint = difflib.get_close_matches(str(key), sorted(allowed), n=1)
        did_you_mean = f" Did you mean {hint[0]!r}?" if hint else ""
        raise SpicepodError(
            f"Dataset {ctx.dataset}: unknown key {ctx.prefix}{key!r}.{did_you_mean} Allowed keys"
            f"{f' in {ctx.prefix[:-1]}' if ctx.prefix else ''}: {', '.join(sorted(allowed))}.",
            dataset=ctx.dataset,
            field=f"{ctx.prefix}{key}",
        )


def _parse_section(raw: Mapping[Any, Any], section: f.Section, ctx: FieldContext) -> dict[str, Any]:
    """Every declared key of ``section``: parsed (or its default), ignored keys noticed, rules run."""
    if section.rejects_unknown:
        _check_keys(raw, section, ctx)
    for field in section:
        value = raw.get(field.key)
        if value is None:
            ctx.parsed[field.key] = copy.copy(field.default)  # a fresh {} per dataset, never shared
            continue
        parsed = field.parse(value, field.key, ctx) if field.parse is not None else value
        if field.use is f.Use.IGNORED:
            ctx.notice(f"{ctx.path(field.key)} is ignored: {field.notice}.")
            continue
        if field.pending:
            ctx.notice(f"{ctx.path(field.key)} is accepted but not acted on yet: {field.pending}.")
        ctx.parsed[field.key] = parsed
    for field in section:
        for rule in field.rules:
            rule(ctx)
    return ctx.parsed


def _parse_dataset(raw: Any, index: int, notices: list[str]) -> Dataset:
    where = f"datasets[{index}]"
    if not isinstance(raw, Mapping):
        raise SpicepodError(
            f"Dataset at {where}: a dataset must be a mapping with at least from and name, "
            f"not a {type(raw).__name__}.",
            field=where,
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
    ctx = FieldContext(dataset=name, notices=notices)
    if raw.get("from") is None:
        raise ctx.error("from", raw.get("from"), _FROM_REQUIRED)
    values = _parse_section(raw, f.DATASET, ctx)
    source = values["from"].strip()
    reason = unservable_reason(source)
    if reason:
        raise SpicepodError(f"Dataset {name}: {reason}", dataset=name, field="from")

    acceleration = None
    if raw.get("acceleration") is not None:
        acceleration = _parse_acceleration(raw["acceleration"], ctx)

    model: dict[str, Any] = {
        field.attribute: values[field.key] for field in f.DATASET.acted_on() if field.key != "acceleration"
    }
    model["from_"] = source
    return Dataset(**model, acceleration=acceleration)


_FROM_REQUIRED = (
    "is not allowed; from is required: the source URI, such as file:data.parquet, s3://bucket/prefix/ "
    "or postgres:schema.table"
)


def _parse_acceleration(raw: Any, dataset_ctx: FieldContext) -> Acceleration:
    name = dataset_ctx.dataset
    if not isinstance(raw, Mapping):
        raise dataset_ctx.error("acceleration", raw, "is not a mapping of acceleration settings")
    _check_engine(raw.get("engine"), dataset_ctx)
    ctx = FieldContext(
        dataset=name, prefix="acceleration.", dataset_values=dataset_ctx.parsed, notices=dataset_ctx.notices
    )
    values = _parse_section(raw, f.ACCELERATION, ctx)
    params = values["params"]
    engine, mode = values["engine"], values["mode"]
    section = f.ENGINE_PARAMS[engine.value]
    if params:
        params_ctx = FieldContext(dataset=name, prefix="acceleration.params.", notices=ctx.notices)
        parsed = _parse_section(params, section, params_ctx)
        if engine in (Engine.SQLITE, Engine.POSTGRES):
            # Typed values (busy_timeout as a duration, pg_port as an int) for the engine to act on.
            values["params"] = {**params, **{k: v for k, v in parsed.items() if k in params}}
        label = _ENGINE_LABELS[engine]
        for key in params:
            if section.get(key) is None:
                ctx.notice(
                    f"acceleration.params.{key} is not a {label} accelerator parameter here; it is ignored."
                )
    if engine is Engine.POSTGRES and not params.get("pg_host") and not params.get("postgres_conn_id"):
        raise ctx.error(
            "params.pg_host",
            None,
            "is required for engine postgres: the PostgreSQL server to accelerate into "
            "(or params.postgres_conn_id, an Airflow Postgres connection)",
        )
    if engine is Engine.SQLITE and mode is AccelerationMode.MEMORY:
        ctx.notice(
            "acceleration engine sqlite, mode memory is accelerated as a SQLite file here "
            "(in-memory acceleration has no meaning across Airflow task processes)."
        )
    elif engine is Engine.POSTGRES and mode is AccelerationMode.MEMORY:
        ctx.notice(
            "acceleration mode memory has no meaning for engine postgres; the data lives on the server."
        )
    elif engine is Engine.ARROW or mode is AccelerationMode.MEMORY:
        # In-memory acceleration cannot outlive one Airflow task process, so it would be empty for
        # every reader: a DuckDB file is the only meaningful equivalent.
        ctx.notice(
            f"acceleration engine {engine.value}, mode {mode.value} is accelerated as a DuckDB file here "
            "(in-memory acceleration has no meaning across Airflow task processes)."
        )
    return Acceleration(**{field.attribute: values[field.key] for field in f.ACCELERATION.acted_on()})


_ENGINE_LABELS = {
    Engine.DUCKDB: "DuckDB",
    Engine.ARROW: "DuckDB",
    Engine.SQLITE: "SQLite",
    Engine.POSTGRES: "PostgreSQL",
}


def _check_engine(engine: Any, ctx: FieldContext) -> None:
    """Spice's other engines error for this dataset alone; anything else is not an engine at all."""
    served = ", ".join(e.value for e in Engine)
    if engine is None or (isinstance(engine, str) and engine.strip().lower() in {e.value for e in Engine}):
        return
    if isinstance(engine, str) and engine.strip().lower() in NOT_YET_SUPPORTED_ENGINES:
        raise ctx.error(
            "acceleration.engine",
            engine,
            f"is not supported yet; the engines served are duckdb, sqlite and postgres (arrow is "
            f"accepted and accelerated as a DuckDB file). Use engine {served}; the spicepod's other "
            "datasets are still served",
        )
    raise ctx.error(
        "acceleration.engine",
        engine,
        "is not supported; the engines served are duckdb, sqlite and postgres (arrow is accepted and "
        "accelerated as a DuckDB file)",
    )


def _check_unique(dataset: Dataset, earlier: dict[str, str], dag_ids: dict[str, str]) -> None:
    """Names are unique case-insensitively (Spice resolves them so) and so are their DAG ids.

    ``earlier``: casefolded name -> name, ``dag_ids``: DAG id -> name, of the datasets accepted so
    far (dicts, so that a pod of n datasets costs n look-ups, not n² comparisons).
    """
    folded = dataset.name.casefold()
    dag_id = dag_id_for(dataset.name)
    other = earlier.get(folded)
    if other is not None:
        raise SpicepodError(
            f"Dataset {dataset.name}: name is used twice ({other} and {dataset.name}; dataset names "
            "are matched case-insensitively). Give each dataset its own name.",
            dataset=dataset.name,
            field="name",
        )
    other = dag_ids.get(dag_id)
    if other is not None:
        raise SpicepodError(
            f"Dataset {dataset.name}: name collides with dataset {other}: both would get the "
            f"refresh DAG id {dag_id}. Rename one of them (names differing only in characters "
            "other than letters, digits and _ map to the same DAG id).",
            dataset=dataset.name,
            field="name",
        )
    earlier[folded] = dataset.name
    dag_ids[dag_id] = dataset.name


__all__ = ["NOT_YET_SUPPORTED_ENGINES", "SUPPORTED_VERSIONS", "load_spicepod", "parse_spicepod"]
