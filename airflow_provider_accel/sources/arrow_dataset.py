"""Sources that DuckDB reads as a registered PyArrow dataset: projection and filters go into the scan.

DuckDB builds the dataset's scanner itself (``dataset.scanner(columns=..., filter=...)``) and leaves
PyArrow's readahead at its defaults: 4 files decoded at once, 16 batches ahead in each. A source can
bound that with :attr:`ArrowDatasetSource.readahead`: the registered dataset is then a
``FileSystemDataset`` whose ``scanner()`` adds those options to DuckDB's, with the same fragments,
so the pushdown is unchanged.
"""

from __future__ import annotations

import logging
import uuid
from abc import abstractmethod
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_accel.sources._common import StreamingSource, quote_ident

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa
    import pyarrow.dataset as pads

    from airflow_provider_accel.spicepod.model import Dataset

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Readahead:
    """How far PyArrow's scanner reads ahead of DuckDB (its ``fragment_readahead``/``batch_readahead``)."""

    #: Files decoded at once. PyArrow's default, 4, keeps up to 4 row groups in memory per scan;
    #: with one row group per file that is what made peak RSS follow the table's size.
    fragments: int = 1
    #: Batches read ahead within a file (PyArrow's default: 16).
    batches: int = 2
    #: Rows per batch (PyArrow's default: 131,072). DuckDB holds each batch until its rows are in
    #: the table, and smaller batches free their memory sooner.
    batch_rows: int = 131_072


@cache
def _bounded_dataset_class() -> type[Any]:
    import pyarrow.dataset as pads

    class BoundedReadaheadDataset(pads.FileSystemDataset):  # type: ignore[misc]
        """A FileSystemDataset whose scanners read ahead only as far as :attr:`readahead` allows."""

        readahead: Readahead

        def scanner(self, **kwargs: Any) -> pads.Scanner:
            kwargs.setdefault("fragment_readahead", self.readahead.fragments)
            kwargs.setdefault("batch_readahead", self.readahead.batches)
            kwargs.setdefault("batch_size", self.readahead.batch_rows)
            return super().scanner(**kwargs)

    return BoundedReadaheadDataset


def bounded_readahead(dataset: pads.Dataset, readahead: Readahead) -> pads.Dataset:
    """``dataset`` (a FileSystemDataset: same fragments, schema, format) with bounded readahead."""
    import pyarrow.dataset as pads

    if not isinstance(dataset, pads.FileSystemDataset):
        return dataset
    cls = _bounded_dataset_class()
    bounded: pads.Dataset = cls(
        list(dataset.get_fragments()), dataset.schema, dataset.format, dataset.filesystem
    )
    bounded.readahead = readahead
    return bounded


class ArrowDatasetSource(StreamingSource):
    """Registers :meth:`arrow_dataset` on the staging connection once, and unregisters it on close."""

    #: Prefix of the registered view's name (a random suffix keeps concurrent scans apart).
    view_prefix: ClassVar[str]
    #: Readahead of the scanner DuckDB builds; ``None``: PyArrow's defaults.
    readahead: ClassVar[Readahead | None] = None

    def __init__(self, dataset: Dataset) -> None:
        super().__init__(dataset)
        self._dataset: pads.Dataset | None = None
        self._registered: tuple[duckdb.DuckDBPyConnection, str] | None = None

    @abstractmethod
    def arrow_dataset(self) -> pads.Dataset:
        """The PyArrow dataset to scan (built once per scan, then cached)."""

    def schema(self, con: duckdb.DuckDBPyConnection) -> pa.Schema:
        return self.arrow_dataset().schema

    def prepare(self, con: duckdb.DuckDBPyConnection) -> None:
        self._register(con)

    def _register(self, con: duckdb.DuckDBPyConnection) -> str:
        if self._registered is not None and self._registered[0] is con:
            return self._registered[1]
        self.close()
        name = f"{self.view_prefix}_{uuid.uuid4().hex[:12]}"
        dataset = self.arrow_dataset()
        if self.readahead is not None:
            dataset = bounded_readahead(dataset, self.readahead)
        con.register(name, dataset)
        self._registered = (con, name)
        return name

    def _registered_view(self, con: duckdb.DuckDBPyConnection) -> str:
        """The quoted name of the registered view, registering it on ``con`` if needed."""
        return quote_ident(self._register(con))

    def close(self) -> None:
        registered, self._registered = self._registered, None
        if registered is not None:
            con, name = registered
            try:
                con.unregister(name)
            except Exception as err:  # connection already closed: the registration died with it
                log.debug("Dataset %s: unregistering %s: %s", self.dataset.name, name, err)
