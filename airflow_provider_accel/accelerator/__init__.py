"""The DuckDB accelerator: dataset files, their crash-safe layout, refresh and retention.

Names are imported lazily so that :mod:`.reader` (used by processes that only *read* accelerated
files: the API, notebooks, other tools) does not pull in Airflow and the hook.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_accel.accelerator.hook import DuckDBAcceleratorHook
    from airflow_provider_accel.accelerator.layout import dataset_file
    from airflow_provider_accel.accelerator.reader import connect_reader, read_dataset
    from airflow_provider_accel.accelerator.result import RefreshResult, RetentionResult

_EXPORTS = {
    "DuckDBAcceleratorHook": "hook",
    "RefreshResult": "result",
    "RetentionResult": "result",
    "connect_reader": "reader",
    "dataset_file": "layout",
    "read_dataset": "reader",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = [
    "DuckDBAcceleratorHook",
    "RefreshResult",
    "RetentionResult",
    "connect_reader",
    "dataset_file",
    "read_dataset",
]
