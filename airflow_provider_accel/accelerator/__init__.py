"""The DuckDB accelerator: dataset files, their crash-safe layout, refresh and retention."""

from __future__ import annotations

from airflow_provider_accel.accelerator.hook import DuckDBAcceleratorHook
from airflow_provider_accel.accelerator.layout import dataset_file
from airflow_provider_accel.accelerator.result import RefreshResult, RetentionResult

__all__ = ["DuckDBAcceleratorHook", "RefreshResult", "RetentionResult", "dataset_file"]
