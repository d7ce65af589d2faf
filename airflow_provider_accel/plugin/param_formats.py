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

import functools
import json
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from jsonschema import FormatChecker, validators

log = logging.getLogger(__name__)

#: The JSON-schema dialect of the trigger form's params. Airflow validates every Param of a scheduled
#: DAG when the DAG object is built (``jsonschema.validate``, which first checks the schema against
#: its meta-schema); without ``$schema`` that is draft 2020-12, whose meta-schema check is the
#: costliest part of building a DAG. Draft 7's check is about half as dear, and
#: ``type``/``enum``/``format``/``title`` mean the same there: the form is unchanged.
FORM_SCHEMA_DIALECT = "http://json-schema.org/draft-07/schema#"
#: Keywords whose draft-7 meta-schema is ``{"type": "string"}`` and nothing else: two schemas that
#: differ only in these keywords' string values pass or fail the meta-schema check together.
_STRING_ANNOTATIONS = frozenset({"title", "description", "format", "$comment"})
#: Bounds the memo of checked schema shapes (a pod has a handful of shapes, whatever its size).
_MAX_CHECKED_SHAPES = 4096
#: Bounds each checker's memo of accepted values (trigger-form defaults, repeated overrides).
_MAX_ACCEPTED_VALUES = 256


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
    def validate(value: object) -> bool:
        from airflow_provider_accel.spicepod.overrides import OverridesError, parse_overrides

        try:
            parse_overrides({key: value}, dataset_name)
        except OverridesError as err:
            raise ParamFormatError(str(err)) from None
        return True

    # parse_overrides is a pure function of (key, value, dataset): a value accepted once is accepted
    # again. Building a DAG checks its form's default, which the loader already validated; the memo
    # spares a second refresh_sql parse per dataset per DAG build. Rejections raise: never cached.
    accepted = functools.lru_cache(maxsize=_MAX_ACCEPTED_VALUES)(validate)

    def check(value: object) -> bool:
        return accepted(value) if isinstance(value, str) else validate(value)

    return check


def _schema_shape(schema: object) -> str | None:
    """``schema`` with its string annotations blanked, as a memo key; None when it cannot be one."""
    if not isinstance(schema, dict):
        return None
    shape: dict[str, Any] = {}
    for keyword, value in schema.items():
        if keyword in _STRING_ANNOTATIONS:
            if not isinstance(value, str):
                return None  # the meta-schema rejects it: always check
            shape[keyword] = ""
        else:
            shape[keyword] = value
    try:
        return json.dumps(shape, sort_keys=True)
    except (TypeError, ValueError):
        return None


_install_lock = threading.Lock()


def install_schema_check_memo() -> None:
    """Check each form-schema *shape* against the draft-7 meta-schema once per process (idempotent).

    ``jsonschema.validate`` (which Airflow's ``Param.resolve`` calls for every param of every DAG it
    builds) checks the schema against its meta-schema before validating the value: about 1.5 ms per
    param, 3,000 times for a 1,000-dataset pod whose forms differ only in the dataset name inside
    ``description`` and ``format``. This registers, through ``jsonschema.validators.validates``, a
    draft-7 validator identical to jsonschema's own except that a schema whose shape (see
    :data:`_STRING_ANNOTATIONS`) already passed is not checked again. Values are still validated
    every time, and a schema that fails its check fails it every time.
    """
    base: Any = validators.validator_for({"$schema": FORM_SCHEMA_DIALECT})
    if getattr(base, "_accel_schema_check_memo", False):
        return
    with _install_lock:
        base = validators.validator_for({"$schema": FORM_SCHEMA_DIALECT})
        if getattr(base, "_accel_schema_check_memo", False):
            return
        memo_validator: Any = validators.extend(base)  # type: ignore[no-untyped-call]
        check_uncached = memo_validator.check_schema
        passed: set[str] = set()

        def check_schema(cls: Any, /, schema: Any, **kwargs: Any) -> None:
            shape = None if kwargs else _schema_shape(schema)
            if shape is not None and shape in passed:
                return
            check_uncached(schema, **kwargs)
            if shape is not None and len(passed) < _MAX_CHECKED_SHAPES:
                passed.add(shape)

        memo_validator.check_schema = classmethod(check_schema)
        memo_validator._accel_schema_check_memo = True
        validators.validates("draft7")(memo_validator)


def register(dataset_names: Iterable[str]) -> None:
    """Register each override field's checker: once, or once per dataset when its format names it."""
    install_schema_check_memo()
    checkers = FormatChecker.checkers
    names = list(dataset_names)
    for key, template in _formats():
        for name in names if "{dataset}" in template else ["-"]:
            fmt = template.format(dataset=name)
            if fmt not in checkers:
                checkers[fmt] = (_checker(key, name), ())


def unregister_dataset_formats() -> None:
    """Forget the per-dataset formats, as a fresh process has none (the benchmark's repetitions)."""
    prefixes = tuple(template.split("{dataset}")[0] for _, template in _formats() if "{dataset}" in template)
    for fmt in [f for f in FormatChecker.checkers if f.startswith(prefixes)]:
        del FormatChecker.checkers[fmt]


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
            # libyaml's safe loader when PyYAML has it: a task runner loads plugins before its first line.
            loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
            document = yaml.load(path.read_text(), Loader=loader) or {}
            for item in document.get("datasets") or []:
                if isinstance(item, dict) and isinstance(item.get("name"), str):
                    names.append(item["name"])
        register(names)
    except Exception:
        log.debug("Trigger-form checkers not registered from the spicepod", exc_info=True)
