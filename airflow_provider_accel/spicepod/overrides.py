"""On-demand refresh overrides (Spice's ``RefreshOverrides``), validated once for every entry point.

The REST API body, a DAG run's ``conf`` and the trigger form all go through :func:`parse_overrides`,
so a request is judged by the same rules wherever it arrives. Which fields exist, and how each is
parsed, is declared with the field in :mod:`~airflow_provider_accel.spicepod.fields` (``on_demand=``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_provider_accel.spicepod import fields
from airflow_provider_accel.spicepod.parsers import OverridesError

#: The override fields, in declaration order.
OVERRIDE_FIELDS: tuple[str, ...] = tuple(f.key for f in fields.on_demand_fields())

#: Prefix of the Airflow Variable that holds a dataset's persisted refresh_sql (``PATCH`` route).
REFRESH_SQL_VARIABLE_PREFIX = "accel_refresh_sql__"

__all__ = [
    "OVERRIDE_FIELDS",
    "REFRESH_SQL_VARIABLE_PREFIX",
    "OverridesError",
    "RefreshOverrides",
    "parse_overrides",
    "refresh_sql_variable_key",
]


class RefreshOverrides:
    """The options of one on-demand refresh run, by field key. ``None`` keeps the dataset's value.

    Read a field as an attribute (``overrides.refresh_mode``); every declared override field is one.
    """

    __slots__ = ("_values",)

    def __init__(self, **values: Any) -> None:
        unknown = sorted(set(values) - set(OVERRIDE_FIELDS))
        if unknown:
            raise TypeError(f"Unknown override field(s) {', '.join(unknown)}")
        self._values = {key: values.get(key) for key in OVERRIDE_FIELDS}

    def __getattr__(self, name: str) -> Any:
        try:
            return object.__getattribute__(self, "_values")[name]
        except KeyError:
            raise AttributeError(name) from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RefreshOverrides) and self._values == other._values

    def __hash__(self) -> int:
        return hash(tuple(self._values.items()))

    def __repr__(self) -> str:
        return f"RefreshOverrides({', '.join(f'{k}={v!r}' for k, v in self._values.items())})"

    def to_conf(self) -> dict[str, Any]:
        """The DAG run ``conf`` carrying these overrides (only the fields that are set)."""
        return {
            field.key: fields.on_demand(field).to_conf(self._values[field.key])
            for field in fields.on_demand_fields()
            if self._values[field.key] is not None
        }


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
    values: dict[str, Any] = {}
    for field in fields.on_demand_fields():
        value = body.get(field.key)
        if value is not None:
            values[field.key] = fields.on_demand(field).parse(value, field.key, dataset_name)
    return RefreshOverrides(**values)
