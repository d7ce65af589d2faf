"""Sources: where accelerated data comes from, one module per kind of ``from:``."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from airflow_provider_accel.exceptions import SpicepodError
from airflow_provider_accel.sources.registry import connector_for, unservable_reason

if TYPE_CHECKING:
    from airflow_provider_accel.sources.base import ScanRequest, Source, SourceCapabilities, SourceScan
    from airflow_provider_accel.spicepod.model import Dataset

# The base classes are imported on first use, not with the package: the spicepod loader reads
# ``sources.registry`` (pure data) while parsing DAG files, which must not pull in DuckDB or PyArrow.
_BASE_NAMES = ("ScanRequest", "Source", "SourceCapabilities", "SourceScan")


def __getattr__(name: str) -> Any:
    if name in _BASE_NAMES:
        from airflow_provider_accel.sources import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _load(path: str) -> type[Source]:
    module, _, name = path.partition(":")
    cls: type[Source] = getattr(importlib.import_module(module), name)
    return cls


def source_class_for(from_: str) -> type[Source] | None:
    """The source class that reads ``from_``, or ``None`` when it is not served (see the registry)."""
    connector = connector_for(from_)
    if connector is None or connector.source is None:
        return None
    return _load(connector.source)


def source_for(dataset: Dataset) -> Source:
    """Build the source that reads ``dataset``; a clear error when its ``from:`` cannot be served here."""
    reason = unservable_reason(dataset.from_)
    cls = source_class_for(dataset.from_) if reason is None else None
    if cls is None:
        raise SpicepodError(
            f"Dataset {dataset.name}: field 'from': {reason}", dataset=dataset.name, field="from"
        )
    return cls.for_dataset(dataset)


__all__ = [
    "ScanRequest",
    "Source",
    "SourceCapabilities",
    "SourceScan",
    "source_class_for",
    "source_for",
]
