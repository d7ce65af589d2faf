"""The spicepod model: typed, validated datasets and their acceleration settings."""

from __future__ import annotations

from typing import Any

from airflow_provider_accel.spicepod.model import (
    ON_DEMAND_MODES,
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

__all__ = [
    "ON_DEMAND_MODES",
    "Acceleration",
    "AccelerationMode",
    "Dataset",
    "Engine",
    "OnConflict",
    "RefreshMode",
    "Spicepod",
    "TimeFormat",
    "dag_id_for",
    "load_spicepod",
    "parse_spicepod",
]


def __getattr__(name: str) -> Any:
    # The loader (YAML, SQL validation) is imported on first use: the plugin reads the field
    # declarations of this package at import and must stay light.
    if name in ("load_spicepod", "parse_spicepod"):
        from airflow_provider_accel.spicepod import loader

        return getattr(loader, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
