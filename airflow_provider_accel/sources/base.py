"""The source interface: what the accelerator needs from any ``from:`` location.

A source turns a :class:`ScanRequest` (projection, filter, limit) into either

* a DuckDB-native ``SELECT`` that the accelerator's own DuckDB connection runs (files, object
  storage, other DuckDB files): DuckDB then pushes the filter and projection into its scan and
  streams straight into the accelerated table, with no Python in the data path; or
* a :class:`pyarrow.RecordBatchReader` (databases, Airflow connections): record batches streamed
  from the source, which DuckDB consumes batch by batch.

Pushdown contract: the accelerator re-applies ``where`` and ``limit`` on top of whatever the source
returns, so a source may push down as much or as little of the filter as its engine can evaluate.
It may apply ``limit`` only when it applied the whole ``where``.

Adding a source is one module with a :class:`Source` subclass that declares its ``from:``
prefixes, plus one :class:`~airflow_provider_accel.sources.registry.Connector` record naming it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from airflow_provider_accel.spicepod.model import Dataset


@dataclass(frozen=True)
class ScanRequest:
    """What to read from a source.

    ``where`` is a boolean SQL expression in DuckDB's dialect over the source's column names,
    already validated (a refresh_sql filter, a data-window or watermark predicate, or their
    ``AND``). Column names in it are double-quoted identifiers.
    """

    columns: tuple[str, ...] | None = None  # None: every column
    where: str | None = None
    limit: int | None = None


@dataclass
class SourceScan:
    """The result of :meth:`Source.scan`: exactly one of ``duckdb_sql`` or ``reader`` is set."""

    duckdb_sql: str | None = None
    reader: pa.RecordBatchReader | None = None

    def __post_init__(self) -> None:
        if (self.duckdb_sql is None) == (self.reader is None):
            raise ValueError("SourceScan needs exactly one of duckdb_sql or reader")


@dataclass(frozen=True)
class SourceCapabilities:
    """What a source can do, declared as data."""

    #: The scan is a DuckDB SELECT run inside the accelerator's connection.
    duckdb_native: bool = False
    #: The source evaluates ``ScanRequest.where`` itself (so only matching rows travel).
    filter_pushdown: bool = False
    #: The source reads only the requested columns.
    projection_pushdown: bool = False


class Source(ABC):
    """A place datasets are read from, chosen by the prefix of the dataset's ``from:``."""

    #: ``from:`` prefixes this source accepts, e.g. ``("postgres:",)``.
    prefixes: ClassVar[tuple[str, ...]] = ()
    capabilities: ClassVar[SourceCapabilities] = SourceCapabilities()

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    @classmethod
    def accepts(cls, from_: str) -> bool:
        return from_.startswith(cls.prefixes)

    @classmethod
    def for_dataset(cls, dataset: Dataset) -> Source:
        """The source that reads ``dataset`` (a source may resolve to a more specific one)."""
        return cls(dataset)

    @property
    def description(self) -> str:
        """How the source is named in messages and logs (never with secrets)."""
        return self.dataset.from_

    def prepare(self, con: duckdb.DuckDBPyConnection) -> None:  # noqa: B027 - optional hook
        """Set up the accelerator's connection for a DuckDB-native scan (secrets, settings)."""

    @abstractmethod
    def schema(self, con: duckdb.DuckDBPyConnection) -> pa.Schema:
        """The source's columns and Arrow types. Raises a RefreshError subclass on failure."""

    @abstractmethod
    def scan(self, request: ScanRequest, con: duckdb.DuckDBPyConnection) -> SourceScan:
        """Start reading. Raises TransientRefreshError or TerminalRefreshError on failure."""

    def stamp(self) -> str | None:
        """A digest of the source's current content that changes whenever its rows may have.

        ``None`` (the default): not known without reading it. Taken before the source is read; an
        append whose live file and stamp are as its last refresh left them reads nothing
        (:mod:`airflow_provider_accel.accelerator.verified`).
        """
        return None

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections held by the last scan."""
