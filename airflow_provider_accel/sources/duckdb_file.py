"""``duckdb:database.schema.table`` (or ``duckdb:schema.table``, ``duckdb:table``) + ``duckdb_open``.

The other DuckDB file is attached read-only to the accelerator's own connection under a private
alias, and the scan is a DuckDB-native ``SELECT`` on it: projection and filters are pushed into
DuckDB's own table scan, and no row passes through Python. ``close()`` detaches it.

The ``database`` part names the catalog inside the file (by default DuckDB names it after the file);
the file is always attached under the private alias, so that part is accepted and ignored. Without a
schema, ``main`` is read.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import pyarrow as pa

from airflow_provider_accel.sources._common import (
    StreamingSource,
    quote_ident,
    quote_literal,
    resolve_params,
    split_identifier,
)
from airflow_provider_accel.sources.base import ScanRequest, SourceCapabilities, SourceScan

if TYPE_CHECKING:
    import duckdb

    from airflow_provider_accel.spicepod.model import Dataset

log = logging.getLogger(__name__)


class DuckDBFileSource(StreamingSource):
    """A table of another DuckDB file, attached read-only to the accelerator's connection."""

    prefixes: ClassVar[tuple[str, ...]] = ("duckdb:",)
    capabilities: ClassVar[SourceCapabilities] = SourceCapabilities(
        duckdb_native=True, filter_pushdown=True, projection_pushdown=True
    )

    def __init__(self, dataset: Dataset) -> None:
        super().__init__(dataset)
        self._con: duckdb.DuckDBPyConnection | None = None
        self._alias: str | None = None

    def _parts(self) -> tuple[str, str]:
        ref = self.dataset.from_.split(":", 1)[1]
        try:
            parts = split_identifier(ref)
        except ValueError as err:
            self.terminal(f"expected duckdb:database.schema.table, got {ref!r}", err)
        if len(parts) > 3:
            self.terminal(f"expected duckdb:database.schema.table, got {ref!r}")
        schema = parts[-2] if len(parts) >= 2 else "main"
        return schema, parts[-1]

    def _path(self) -> Path:
        path = resolve_params(self.dataset).get("duckdb_open")
        if not path:
            self.terminal("params.duckdb_open is required (the DuckDB file to read)")
        resolved = Path(str(path)).expanduser()
        if not resolved.is_file():
            self.terminal(f"DuckDB file {str(resolved)!r} does not exist")
        return resolved

    def prepare(self, con: duckdb.DuckDBPyConnection) -> None:
        self.attach(con)

    def attach(self, con: duckdb.DuckDBPyConnection) -> str:
        """Attach the file read-only (once per connection) and return the qualified table name."""
        import duckdb

        schema, table = self._parts()
        if self._alias is None or self._con is not con:
            self.close()
            alias = f"accel_src_{uuid.uuid4().hex[:12]}"
            try:
                con.execute(
                    f"ATTACH {quote_literal(str(self._path()))} AS {quote_ident(alias)} (READ_ONLY)"
                ).fetchall()
            except duckdb.IOException as err:
                # Another process holds the file's write lock: that ends, so retry later.
                self.transient(f"cannot open the DuckDB file read-only: {err}", err)
            except duckdb.Error as err:
                self.terminal(f"cannot attach the DuckDB file: {err}", err)
            self._con, self._alias = con, alias
        return f"{quote_ident(self._alias)}.{quote_ident(schema)}.{quote_ident(table)}"

    def schema(self, con: duckdb.DuckDBPyConnection) -> pa.Schema:
        import duckdb

        qualified = self.attach(con)
        try:
            return con.sql(f"SELECT * FROM {qualified} LIMIT 0").to_arrow_table().schema
        except duckdb.CatalogException as err:
            self.terminal(f"table not found: {err}", err)

    def scan(self, request: ScanRequest, con: duckdb.DuckDBPyConnection) -> SourceScan:
        schema = self.schema(con)
        wanted = self.check_columns(schema, request.columns)
        qualified = self.attach(con)
        select = ", ".join(quote_ident(c) for c in wanted)
        # The accelerator re-applies where/limit on top; DuckDB pushes both into this scan itself.
        return SourceScan(duckdb_sql=f"SELECT {select} FROM {qualified}")

    def close(self) -> None:
        con, alias = self._con, self._alias
        self._con = self._alias = None
        if con is not None and alias is not None:
            try:
                con.execute(f"DETACH {quote_ident(alias)}").fetchall()
            except Exception as err:  # the connection may be closed already; the attachment died with it
                log.debug("Dataset %s: detaching %s: %s", self.dataset.name, alias, err)
