"""Sources: where accelerated data comes from, one module per kind of ``from:``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_accel.exceptions import SpicepodError

if TYPE_CHECKING:
    from airflow_provider_accel.sources.base import ScanRequest, Source, SourceCapabilities, SourceScan
    from airflow_provider_accel.spicepod.model import Dataset


#: Source classes in match order (the first that accepts a ``from:`` wins; FileSource is the fallback
#: for plain paths and must stay last).
# Imported on first use, not with the package: the spicepod loader reads ``sources.registry`` (pure
# data) while parsing DAG files, which must not pull in DuckDB, PyArrow or the drivers.
def _source_classes() -> list[type[Source]]:
    from airflow_provider_accel.sources.airflow_sql import AirflowSqlSource
    from airflow_provider_accel.sources.duckdb_file import DuckDBFileSource
    from airflow_provider_accel.sources.file import FileSource
    from airflow_provider_accel.sources.http import HttpSource
    from airflow_provider_accel.sources.mysql import MySQLSource
    from airflow_provider_accel.sources.object_store import ObjectStoreSource
    from airflow_provider_accel.sources.postgres import PostgresSource
    from airflow_provider_accel.sources.sqlite import SqliteSource

    return [
        ObjectStoreSource,
        HttpSource,
        PostgresSource,
        MySQLSource,
        SqliteSource,
        DuckDBFileSource,
        AirflowSqlSource,
        FileSource,
    ]


_BASE_NAMES = ("ScanRequest", "Source", "SourceCapabilities", "SourceScan")


def __getattr__(name: str) -> Any:
    if name == "SOURCE_CLASSES":
        return _source_classes()
    if name in _BASE_NAMES:
        from airflow_provider_accel.sources import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def source_class_for(from_: str) -> type[Source] | None:
    """The source class that reads ``from_``, or ``None`` when no source accepts it."""
    return next((cls for cls in _source_classes() if cls.accepts(from_)), None)


def source_for(dataset: Dataset) -> Source:
    """Build the source that reads ``dataset``; a clear error when its ``from:`` is not supported."""
    cls = source_class_for(dataset.from_)
    if cls is None:
        prefixes = sorted({p for c in _source_classes() for p in c.prefixes})
        raise SpicepodError(
            f"Dataset {dataset.name}: field 'from' {dataset.from_!r} is not a supported source. "
            f"Supported prefixes: {', '.join(prefixes)} (or a local path).",
            dataset=dataset.name,
            field="from",
        )
    return cls(dataset)


__all__ = [
    "SOURCE_CLASSES",
    "ScanRequest",
    "Source",
    "SourceCapabilities",
    "SourceScan",
    "source_class_for",
    "source_for",
]
