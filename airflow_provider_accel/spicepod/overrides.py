"""On-demand refresh overrides (Spice's ``RefreshOverrides``), validated once for every entry point.

The REST API body, a DAG run's ``conf`` and the trigger form all go through :func:`parse_overrides`,
so a request is judged by the same rules wherever it arrives.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from airflow_provider_accel.accelerator.modes import ON_DEMAND_MODES, RefreshMode
from airflow_provider_accel.exceptions import RefreshSqlError
from airflow_provider_accel.spicepod.durations import DURATION_HELP, format_duration, parse_duration
from airflow_provider_accel.sql.refresh_sql import validate_refresh_sql

OVERRIDE_FIELDS = ("refresh_sql", "refresh_mode", "refresh_jitter_max")

#: Prefix of the Airflow Variable that holds a dataset's persisted refresh_sql (``PATCH`` route).
REFRESH_SQL_VARIABLE_PREFIX = "accel_refresh_sql__"


class OverridesError(ValueError):
    """An override is invalid; the message says which field and what is allowed."""


@dataclass(frozen=True)
class RefreshOverrides:
    """The options of one on-demand refresh run. ``None`` keeps the dataset's configured value."""

    refresh_sql: str | None = None
    refresh_mode: RefreshMode | None = None
    refresh_jitter_max: timedelta | None = None

    def to_conf(self) -> dict[str, Any]:
        """The DAG run ``conf`` carrying these overrides (only the fields that are set)."""
        conf: dict[str, Any] = {}
        if self.refresh_sql is not None:
            conf["refresh_sql"] = self.refresh_sql
        if self.refresh_mode is not None:
            conf["refresh_mode"] = self.refresh_mode.value
        if self.refresh_jitter_max is not None:
            conf["refresh_jitter_max"] = format_duration(self.refresh_jitter_max)
        return conf


def refresh_sql_variable_key(dataset_name: str) -> str:
    """The Airflow Variable key of a dataset's persisted refresh_sql (case-insensitive name)."""
    return REFRESH_SQL_VARIABLE_PREFIX + dataset_name.casefold()


def parse_overrides(body: Any, dataset_name: str, *, allow_unknown_fields: bool = False) -> RefreshOverrides:
    """Validate overrides from a JSON object (API body, run conf, trigger form params).

    ``None`` or an empty mapping is a plain refresh. Raises :class:`OverridesError` naming the field
    and what is allowed; a rejected ``refresh_sql`` carries the validator's own message.
    """
    if body is None:
        return RefreshOverrides()
    if not isinstance(body, Mapping):
        raise OverridesError(
            f"The request body must be a JSON object with optional fields {', '.join(OVERRIDE_FIELDS)}; "
            f"got {type(body).__name__}."
        )
    if not allow_unknown_fields:
        unknown = sorted(str(k) for k in body if k not in OVERRIDE_FIELDS)
        if unknown:
            raise OverridesError(
                f"Unknown field(s) {', '.join(unknown)}; allowed fields are {', '.join(OVERRIDE_FIELDS)}."
            )

    sql = body.get("refresh_sql")
    if sql is not None:
        if not isinstance(sql, str):
            raise OverridesError(f"refresh_sql must be a string or null; got {type(sql).__name__}.")
        if not sql.strip():
            sql = None  # an empty text box in the trigger form means "no override"
        else:
            try:
                validate_refresh_sql(sql, dataset_name)
            except RefreshSqlError as err:
                raise OverridesError(str(err)) from err

    mode_value = body.get("refresh_mode")
    mode: RefreshMode | None = None
    if mode_value is not None:
        allowed = ", ".join(m.value for m in ON_DEMAND_MODES)
        if not isinstance(mode_value, str):
            raise OverridesError(f"refresh_mode must be one of {allowed} or null; got {mode_value!r}.")
        try:
            mode = RefreshMode(mode_value)
        except ValueError:
            raise OverridesError(
                f"refresh_mode {mode_value!r} is not a refresh mode; use one of {allowed}."
            ) from None
        if mode not in ON_DEMAND_MODES:
            raise OverridesError(
                f"refresh_mode {mode.value!r} cannot be refreshed on demand; use one of {allowed}."
            )

    jitter_value = body.get("refresh_jitter_max")
    jitter: timedelta | None = None
    if jitter_value is not None:
        if not isinstance(jitter_value, str):
            raise OverridesError(
                f"refresh_jitter_max must be {DURATION_HELP}, or null; got {type(jitter_value).__name__}."
            )
        if jitter_value.strip():
            try:
                jitter = parse_duration(jitter_value)
            except ValueError as err:
                raise OverridesError(f"refresh_jitter_max: {err}.") from None

    return RefreshOverrides(refresh_sql=sql, refresh_mode=mode, refresh_jitter_max=jitter)
