"""The trigger form's own checks: JSON-schema ``format`` checkers that run the project's validator.

Airflow 3.3 validates a DAG's params with JSON schema only (``SerializedParam.resolve`` calls
``jsonschema.validate(value, schema, format_checker=FormatChecker())``); it has no hook for a custom
Python check. A ``FormatChecker()`` built without arguments uses every format registered on the
class, so the DAG factory gives each override param the format declared with its field in
:mod:`~airflow_provider_accel.spicepod.fields` (``accel-refresh-sql:<dataset>``, ``accel-duration``),
and this module registers checkers for them that call
:func:`~airflow_provider_accel.spicepod.overrides.parse_overrides`, the validator of every other entry
point.

A checker raises :class:`ParamFormatError` (not one of the exceptions jsonschema turns into its
generic ``'x' is not a 'format'``), which Airflow's ``ParamsDict.validate`` reports as
``Invalid input for param refresh_sql: <the validator's message>`` and its trigger route
(``POST /api/v2/dags/{dag_id}/dagRuns``, used by the UI's trigger form) answers as a 400 **before any
run is created**.

Checkers exist only in processes that loaded the ``accel`` plugin (the api-server does) and only
for the datasets known when they were registered (at plugin import, and again whenever the REST API
re-reads a changed spicepod). Where a format is unknown jsonschema ignores it; the refresh operator
still validates the run's conf first and fails the run at once with the same message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from jsonschema import FormatChecker

log = logging.getLogger(__name__)


class ParamFormatError(ValueError):
    """A trigger-form value the project's validator rejects; the message is the validator's."""


def _formats() -> list[tuple[str, str]]:
    """``(override key, format template)`` of every on-demand field whose form param has a format."""
    from airflow_provider_accel.spicepod import fields

    return [
        (field.key, spec.form_format)
        for field in fields.on_demand_fields()
        if (spec := fields.on_demand(field)).form_format
    ]


def _checker(key: str, dataset_name: str) -> Callable[[object], bool]:
    def check(value: object) -> bool:
        from airflow_provider_accel.spicepod.overrides import OverridesError, parse_overrides

        try:
            parse_overrides({key: value}, dataset_name)
        except OverridesError as err:
            raise ParamFormatError(str(err)) from None
        return True

    return check


def register(dataset_names: Iterable[str]) -> None:
    """Register each override field's checker: once, or once per dataset when its format names it."""
    checkers = FormatChecker.checkers
    names = list(dataset_names)
    for key, template in _formats():
        for name in names if "{dataset}" in template else ["-"]:
            fmt = template.format(dataset=name)
            if fmt not in checkers:
                checkers[fmt] = (_checker(key, name), ())


def register_from_spicepod() -> None:
    """Register the checkers of the configured spicepod's datasets; never raises.

    Only the dataset names are read (plain YAML), so that plugin loading stays cheap and an invalid
    spicepod cannot break it.
    """
    try:
        import yaml

        from airflow_provider_accel.config import spicepod_path

        path = spicepod_path()
        names: list[str] = []
        if path.is_file():
            document = yaml.safe_load(path.read_text()) or {}
            for item in document.get("datasets") or []:
                if isinstance(item, dict) and isinstance(item.get("name"), str):
                    names.append(item["name"])
        register(names)
    except Exception:
        log.debug("Trigger-form checkers not registered from the spicepod", exc_info=True)
