"""The spicepod model: typed, validated datasets and their acceleration settings."""

from __future__ import annotations

from airflow_provider_accel.spicepod.loader import load_spicepod, parse_spicepod
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
