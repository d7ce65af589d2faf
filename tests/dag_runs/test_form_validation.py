"""The trigger forms' validation shortcuts (plugin.param_formats) never change what is accepted."""

from __future__ import annotations

import jsonschema
import pytest
from airflow.sdk import Param
from airflow.sdk.exceptions import ParamValidationError
from jsonschema import FormatChecker

from airflow_provider_accel.dags.factory import FORM_SCHEMA_DIALECT, build_dags
from airflow_provider_accel.plugin import param_formats
from airflow_provider_accel.spicepod.loader import parse_spicepod


def _pod(*names: str) -> dict:
    datasets = [
        {
            "from": "file:/data/x.parquet",
            "name": name,
            "acceleration": {"enabled": True, "refresh_sql": f"SELECT * FROM {name} WHERE v > 0"},
        }
        for name in names
    ]
    return {"version": "v1", "kind": "Spicepod", "name": "forms", "datasets": datasets}


def test_a_schema_failing_its_meta_schema_check_fails_after_a_same_shaped_one_passed() -> None:
    """The memo keys on everything but string annotations: a bad ``type`` is refused every time."""
    param_formats.install_schema_check_memo()
    good = {"$schema": FORM_SCHEMA_DIALECT, "type": "string", "description": "first"}
    jsonschema.validate("x", good)
    jsonschema.validate("x", {**good, "description": "second"})
    for _ in range(2):
        with pytest.raises(jsonschema.SchemaError):
            jsonschema.validate("x", {**good, "type": "strng"})
    with pytest.raises(jsonschema.SchemaError):
        jsonschema.validate("x", {**good, "description": 3})


def test_values_are_still_validated_when_the_schema_check_is_remembered() -> None:
    """A remembered schema shape still rejects a value outside its enum, through Airflow's Param."""
    param_formats.install_schema_check_memo()
    schema = {"$schema": FORM_SCHEMA_DIALECT, "type": "string", "enum": ["full", "append"]}
    Param("full", description="one", **schema).resolve()
    with pytest.raises(ParamValidationError):
        Param("fast", description="two", **schema).resolve()


def test_a_rejected_refresh_sql_is_rejected_again_and_an_accepted_one_still_passes() -> None:
    """The checker remembers acceptances only: the same bad refresh_sql raises on every check."""
    build_dags(parse_spicepod(_pod("memo_ds")))
    checker = FormatChecker()
    fmt = "accel-refresh-sql:memo_ds"
    assert fmt in checker.checkers
    for _ in range(2):
        assert checker.conforms("SELECT * FROM memo_ds WHERE v > 1", fmt)
        with pytest.raises(param_formats.ParamFormatError, match="memo_ds"):
            checker.check("DROP TABLE memo_ds", fmt)


def test_a_full_build_registers_every_datasets_format_once_built() -> None:
    """After building every DAG the forms' per-dataset formats are registered, as before the change."""
    param_formats.unregister_dataset_formats()
    build_dags(parse_spicepod(_pod("late_a", "late_b")))
    assert {"accel-refresh-sql:late_a", "accel-refresh-sql:late_b"} <= set(FormatChecker.checkers)
