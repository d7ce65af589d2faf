"""Value parsers of spicepod fields and on-demand overrides, used by the declarations in ``fields``.

A spicepod parser takes ``(value, key, ctx)`` and returns the typed value or raises the
:class:`SpicepodError` that :meth:`FieldContext.error` shapes (``Dataset <name>: <field> <value>
<problem>.``). An on-demand parser takes ``(value, key, dataset_name)`` and raises
:class:`OverridesError`. Neither kind knows which field it serves: the key comes from the field's
declaration, so one parser serves every field of its type.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from airflow_provider_accel.exceptions import SpicepodError
from airflow_provider_accel.spicepod.durations import DURATION_HELP, format_duration, parse_duration

_E = TypeVar("_E", bound=StrEnum)

_SCALAR_TYPES = (str, int, float, bool)


class OverridesError(ValueError):
    """An on-demand override is invalid; the message says which field and what is allowed."""


@dataclass
class FieldContext:
    """Where a value is being parsed: the dataset, the section, and what that section parsed so far."""

    dataset: str
    prefix: str = ""  # "" for dataset keys, "acceleration." for acceleration keys
    parsed: dict[str, Any] = field(default_factory=dict)  # this section's parsed values, by key
    dataset_values: Mapping[str, Any] = field(default_factory=dict)  # the dataset's, inside acceleration
    notices: list[str] = field(default_factory=list)

    def path(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def error(self, key: str, value: Any, problem: str) -> SpicepodError:
        """The one message shape: ``Dataset <name>: <field> <value> <problem>.``"""
        return SpicepodError(
            f"Dataset {self.dataset}: {self.path(key)} {value!r} {problem}.",
            dataset=self.dataset,
            field=self.path(key),
        )

    def fail(self, key: str, message: str) -> SpicepodError:
        """A rule across fields, ``message`` naming the fields involved."""
        return SpicepodError(f"Dataset {self.dataset}: {message}", dataset=self.dataset, field=self.path(key))

    def notice(self, message: str) -> None:
        self.notices.append(f"Dataset {self.dataset}: {message}")


SpicepodParser = Callable[[Any, str, FieldContext], Any]
OverrideParser = Callable[[Any, str, str], Any]


# --------------------------------------------------------------------------------------------------
# Spicepod values
# --------------------------------------------------------------------------------------------------


def text(what: str) -> SpicepodParser:
    """A non-empty string (``what`` says what it is, for the message)."""

    def parse(value: Any, key: str, ctx: FieldContext) -> str:
        if not isinstance(value, str) or not value.strip():
            raise ctx.error(key, value, f"is not {what}")
        return value

    return parse


def optional_string(value: Any, key: str, ctx: FieldContext) -> str:
    if not isinstance(value, str):
        raise ctx.error(key, value, "is not a string")
    return value


def boolean(value: Any, key: str, ctx: FieldContext) -> bool:
    if not isinstance(value, bool):
        # "false" (quoted) or 0 are truthy/ambiguous in Python: only real YAML booleans are taken.
        raise ctx.error(key, value, "is not a boolean; write true or false (unquoted)")
    return value


def enabled_disabled(value: Any, key: str, ctx: FieldContext) -> bool:
    """Spice's ``enabled`` / ``disabled`` switches (a YAML boolean is read the same way)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("enabled", "disabled", "true", "false"):
        return value.strip().lower() in ("enabled", "true")
    raise ctx.error(key, value, "is not allowed; use enabled or disabled")


def enum(kind: type[_E]) -> SpicepodParser:
    """A member of ``kind``, matched case-insensitively."""

    def parse(value: Any, key: str, ctx: FieldContext) -> _E:
        return enum_value(value, kind, key, ctx)

    return parse


def enum_value(value: Any, kind: type[_E], key: str, ctx: FieldContext) -> _E:
    if isinstance(value, str):
        wanted = value.strip().casefold()
        for member in kind:
            if member.value.casefold() == wanted:
                return member
    allowed = ", ".join(member.value for member in kind)
    raise ctx.error(key, value, f"is not allowed; use one of {allowed}")


def duration(*, allow_zero: bool = False) -> SpicepodParser:
    def parse(value: Any, key: str, ctx: FieldContext) -> timedelta:
        try:
            parsed = parse_duration(value)
        except ValueError:
            raise ctx.error(key, value, f"is not {DURATION_HELP}") from None
        if parsed <= timedelta(0) and not allow_zero:
            raise ctx.error(key, value, "is not allowed; it must be longer than zero")
        return parsed

    return parse


def positive_int(value: Any, key: str, ctx: FieldContext) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ctx.error(
            key,
            value,
            "is not allowed; it must be a positive whole number (leave it out for unlimited retries)",
        )
    return value


def port(value: Any, key: str, ctx: FieldContext) -> int:
    """A TCP port, as a number or a string of digits (Spice's params are strings)."""
    text_value = str(value).strip() if isinstance(value, int | str) and not isinstance(value, bool) else ""
    if not text_value.isdigit() or not 0 < int(text_value) < 65536:
        raise ctx.error(key, value, "is not a port number (1-65535)")
    return int(text_value)


def cron(value: Any, key: str, ctx: FieldContext) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ctx.error(key, value, "is not a cron expression such as '0 * * * *' (a quoted string)")
    expression = " ".join(value.split())
    expanded = expression
    if expression.startswith("@"):
        # The presets Airflow's cron timetables accept (@hourly, @daily, ... @quarterly).
        from airflow.utils.dates import cron_presets

        if expression not in cron_presets:
            raise ctx.error(key, value, f"is not a cron preset; use one of {', '.join(cron_presets)}")
        expanded = cron_presets[expression]
    if len(expanded.split()) != 5:
        # croniter reads a 6th field as seconds at the end, Spice's cron reads seconds first: a
        # 6- or 7-field expression would fire at different times here than in Spice.
        raise ctx.error(
            key,
            value,
            "is not a 5-field cron expression (minute hour day-of-month month day-of-week), "
            "such as '0 * * * *'",
        )
    # croniter is what Airflow's CronTriggerTimetable validates and schedules with.
    from croniter import CroniterBadCronError, CroniterBadDateError, croniter

    try:
        croniter(expanded)
    except (CroniterBadCronError, CroniterBadDateError, ValueError) as err:
        raise ctx.error(key, value, f"is not a valid cron expression ({err})") from None
    return expression


def params(value: Any, key: str, ctx: FieldContext) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ctx.error(key, value, "is not a mapping of parameter names to values")
    parsed: dict[str, Any] = {}
    for name, item in value.items():
        if not isinstance(name, str):
            raise ctx.error(f"{key} key", name, "is not a string")
        if item is not None and not isinstance(item, _SCALAR_TYPES):
            # Spice params are flat strings; a nested value is almost always an indentation mistake.
            raise ctx.error(f"{key}.{name}", item, "is not allowed; parameter values are strings or numbers")
        parsed[name] = item
    return parsed


def column_reference(text_value: str) -> tuple[str, ...] | None:
    """``id`` -> ``("id",)``; ``(a, b)`` and ``a, b`` -> ``("a", "b")``; ``None`` when malformed."""
    stripped = text_value.strip()
    if stripped.startswith("(") or stripped.endswith(")"):
        if not (stripped.startswith("(") and stripped.endswith(")")):
            return None
        stripped = stripped[1:-1]
    parts = [part.strip() for part in stripped.split(",")]
    if not parts or any(not part or any(c in part for c in "()") for part in parts):
        return None
    return tuple(parts)


def primary_key(value: Any, key: str, ctx: FieldContext) -> tuple[str, ...]:
    names: tuple[str, ...] | None
    if isinstance(value, str):
        names = column_reference(value)
    elif isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        names = tuple(item.strip() for item in value)
        if any(not name or any(c in name for c in "(),") for name in names):
            names = None
    else:
        names = None
    if names is None:
        raise ctx.error(
            key,
            value,
            "is not a primary key; write a column name (id), a composite key '(a, b)' or 'a, b', "
            "or a YAML list of column names",
        )
    if len(set(names)) != len(names):
        raise ctx.error(key, value, "names a column twice")
    return names


def indexes(kind: type[_E]) -> SpicepodParser:
    """``{column or (a, b): enabled | unique}``."""

    def parse(value: Any, key: str, ctx: FieldContext) -> dict[str, _E]:
        if not isinstance(value, Mapping):
            raise ctx.error(key, value, "is not a mapping of column (or '(a, b)') to enabled or unique")
        parsed: dict[str, _E] = {}
        for column, index_kind in value.items():
            if not isinstance(column, str) or column_reference(column) is None:
                raise ctx.error(f"{key} key", column, "is not a column name or '(a, b)' column list")
            parsed[column] = enum_value(index_kind, kind, f"{key}.{column}", ctx)
        return parsed

    return parse


def dataset_sql(kind: str) -> SpicepodParser:
    """``refresh_sql`` / ``retention_sql``: validated by the project's one SQL validator."""

    def parse(value: Any, key: str, ctx: FieldContext) -> str:
        example = "SELECT * FROM" if kind == "refresh" else "DELETE FROM"
        if not isinstance(value, str) or not value.strip():
            raise ctx.error(key, value, f"is not a SQL statement such as {example} {ctx.dataset} WHERE ...")
        # Imported here: the validator pulls in DuckDB's parser, which only pods with SQL need.
        from airflow_provider_accel.exceptions import RefreshSqlError
        from airflow_provider_accel.sql import refresh_sql

        validate = (
            refresh_sql.validate_refresh_sql if kind == "refresh" else refresh_sql.validate_retention_sql
        )
        try:
            validate(value, ctx.dataset)
        except RefreshSqlError as err:
            raise SpicepodError(
                f"Dataset {ctx.dataset}: {ctx.path(key)} is not allowed: {err}",
                dataset=ctx.dataset,
                field=ctx.path(key),
            ) from err
        return value

    return parse


# --------------------------------------------------------------------------------------------------
# On-demand overrides (API body, DAG run conf, trigger form)
# --------------------------------------------------------------------------------------------------


def override_sql(value: Any, key: str, dataset_name: str) -> str | None:
    if not isinstance(value, str):
        raise OverridesError(f"{key} must be a string or null; got {type(value).__name__}.")
    if not value.strip():
        return None  # an empty text box in the trigger form means "no override"
    from airflow_provider_accel.exceptions import RefreshSqlError
    from airflow_provider_accel.sql.refresh_sql import validate_refresh_sql

    try:
        validate_refresh_sql(value, dataset_name)
    except RefreshSqlError as err:
        raise OverridesError(str(err)) from err
    return value


def override_enum(kind: type[_E], allowed_members: tuple[_E, ...]) -> OverrideParser:
    allowed = ", ".join(member.value for member in allowed_members)

    def parse(value: Any, key: str, dataset_name: str) -> _E:
        if not isinstance(value, str):
            raise OverridesError(f"{key} must be one of {allowed} or null; got {value!r}.")
        try:
            member = kind(value)
        except ValueError:
            raise OverridesError(
                f"{key} {value!r} is not a {key.replace('_', ' ')}; use one of {allowed}."
            ) from None
        if member not in allowed_members:
            raise OverridesError(
                f"{key} {member.value!r} cannot be refreshed on demand; use one of {allowed}."
            )
        return member

    return parse


def override_duration(value: Any, key: str, dataset_name: str) -> timedelta | None:
    if not isinstance(value, str):
        raise OverridesError(f"{key} must be {DURATION_HELP}, or null; got {type(value).__name__}.")
    if not value.strip():
        return None
    try:
        return parse_duration(value)
    except ValueError as err:
        raise OverridesError(f"{key}: {err}.") from None


def conf_enum(value: Any) -> Any:
    return value.value


def conf_duration(value: Any) -> str:
    return format_duration(value)


def conf_same(value: Any) -> Any:
    return value


# --------------------------------------------------------------------------------------------------
# DuckDB acceleration params (validated here; the accelerator acts on them)
# --------------------------------------------------------------------------------------------------

_MEMORY = re.compile(r"^\s*\d+(?:\.\d+)?\s*(?:B|KB|MB|GB|TB|KIB|MIB|GIB|TIB)\s*$", re.IGNORECASE)
_SORT_PART = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*|\"[^\"]+\")(?:\s+(ASC|DESC))?\s*$", re.IGNORECASE)


def memory_limit(value: Any, key: str, ctx: FieldContext) -> str:
    if not isinstance(value, str) or not _MEMORY.match(value):
        raise ctx.error(
            key, value, "is not a memory size such as 512MB, 2GB or 4GiB (units KB..TB, KiB..TiB)"
        )
    return value


def string_boolean(value: Any, key: str, ctx: FieldContext) -> bool:
    """A param boolean: params are strings in Spice, so ``true`` and ``'true'`` are the same."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ctx.error(key, value, "is not allowed; use true or false")


def sort_columns(value: Any, key: str, ctx: FieldContext) -> str:
    if (
        not isinstance(value, str)
        or not value.strip()
        or not all(_SORT_PART.match(p) for p in value.split(","))
    ):
        raise ctx.error(
            key, value, "is not a sort list such as 'column1 ASC, column2 DESC' or 'column1, column2'"
        )
    return value


def choice(*values: str) -> SpicepodParser:
    def parse(value: Any, key: str, ctx: FieldContext) -> str:
        if not isinstance(value, str) or value.strip().lower() not in values:
            raise ctx.error(key, value, f"is not allowed; use one of {', '.join(values)}")
        return value.strip().lower()

    return parse


def file_path(value: Any, key: str, ctx: FieldContext) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ctx.error(key, value, "is not a file path")
    return value


def resolve_ref(ref: Any, base_dir: Path | None, where: str) -> Path:
    """The file of ``- ref: datasets/x``: ``<spicepod dir>/datasets/x/dataset.yaml`` (or ``.yml``).

    Refused when it leaves the spicepod's directory (``..``, an absolute path, a symlink out).
    """
    if not isinstance(ref, str) or not ref.strip():
        raise SpicepodError(
            f"Dataset at {where}: ref {ref!r} is not a path such as datasets/my_dataset.", field="ref"
        )
    if base_dir is None:
        raise SpicepodError(
            f"Dataset at {where}: ref {ref!r} can only be resolved in a spicepod read from a file; "
            "load it with load_spicepod, or define the dataset inline with from and name.",
            field="ref",
        )
    root = base_dir.resolve()
    target = (root / ref).resolve()
    if Path(ref).is_absolute() or not target.is_relative_to(root):
        raise SpicepodError(
            f"Dataset at {where}: ref {ref!r} points outside the spicepod's directory {root}; a ref is "
            "a path relative to the spicepod, such as datasets/my_dataset.",
            field="ref",
        )
    for name in ("dataset.yaml", "dataset.yml"):
        candidate = target / name
        if candidate.is_file():
            if not candidate.resolve().is_relative_to(root):
                raise SpicepodError(
                    f"Dataset at {where}: ref {ref!r} resolves outside the spicepod's directory {root}.",
                    field="ref",
                )
            return candidate
    raise SpicepodError(
        f"Dataset at {where}: ref {ref!r} has no {target / 'dataset.yaml'}. Create that file with the "
        "dataset's from and name, or fix the ref.",
        field="ref",
    )
