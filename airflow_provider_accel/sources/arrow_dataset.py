"""Sources that DuckDB reads as a registered PyArrow dataset: projection and filters go into the scan."""

from __future__ import annotations

import logging
import uuid
from abc import abstractmethod
from typing import TYPE_CHECKING, ClassVar

from airflow_provider_accel.sources._common import StreamingSource, quote_ident

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa
    import pyarrow.dataset as pads

    from airflow_provider_accel.spicepod.model import Dataset

log = logging.getLogger(__name__)


class ArrowDatasetSource(StreamingSource):
    """Registers :meth:`arrow_dataset` on the staging connection once, and unregisters it on close."""

    #: Prefix of the registered view's name (a random suffix keeps concurrent scans apart).
    view_prefix: ClassVar[str]

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
        con.register(name, self.arrow_dataset())
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
