"""``flightsql:<dataset>``: a table of an Arrow Flight SQL server, read through ADBC's Flight SQL driver.

Params (Spice's): ``flightsql_endpoint`` (required; ``http://`` or ``grpc://`` for plaintext,
``https://`` or ``grpc+tls://`` for TLS, as Spice reads them), ``flightsql_username`` and
``flightsql_password`` (Flight's Basic-auth handshake; the bearer token the server returns is sent
with every later call). ``<dataset>`` is the fully qualified name, e.g. ``my_catalog.schema.table``.
Install with ``pip install 'airflow-provider-accel[flightsql]'``.

Pushdown, as Spice does it: one ``SELECT <columns> FROM <dataset> [WHERE <filter>] [LIMIT n]`` goes
to the server (``GetFlightInfo``, then ``DoGet`` of its endpoints) and the result streams back as
Arrow batches, never whole. The filter is written in ANSI SQL (sqlglot's generic dialect, double-
quoted identifiers) since Flight SQL servers speak many dialects; when the server rejects it, the
query is sent again without it (the accelerator re-applies the filter anyway).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, ClassVar

import pyarrow as pa

from airflow_provider_accel.exceptions import RefreshError
from airflow_provider_accel.sources._common import (
    quote_ident,
    resolve_params,
    split_identifier,
    transpile_where,
)
from airflow_provider_accel.sources.base import ScanRequest, SourceScan
from airflow_provider_accel.sources.database import (
    Column,
    DatabaseSource,
    Dialect,
    close_adbc,
    first_line,
    iterate,
)

if TYPE_CHECKING:
    import duckdb

    from airflow_provider_accel.spicepod.model import Dataset

log = logging.getLogger(__name__)

#: Spice's endpoint schemes -> the ADBC driver's (gRPC) URI schemes.
_SCHEMES = {
    "http://": "grpc://",
    "grpc://": "grpc://",
    "https://": "grpc+tls://",
    "grpc+tls://": "grpc+tls://",
}


def _status(err: BaseException) -> str | None:
    """The ADBC status code's name (``IO``, ``UNAUTHENTICATED``...), ``None`` for a non-ADBC error."""
    code = getattr(err, "status_code", None)
    return getattr(code, "name", None) if code is not None else None


FLIGHTSQL = Dialect(
    title="Flight SQL server",
    sqlglot="",  # sqlglot's generic (ANSI-like) dialect
    error_code=_status,
    # The server refused the statement (syntax, unknown function, type): read again without the filter.
    pushdown_rejected=frozenset({"INVALID_ARGUMENT", "NOT_IMPLEMENTED", "UNKNOWN", "INTERNAL"}),
    # gRPC UNAVAILABLE / DEADLINE_EXCEEDED / CANCELLED surface as these ADBC codes.
    transient=frozenset({"IO", "TIMEOUT", "CANCELLED"}),
)


class FlightSqlSource(DatabaseSource):
    """A Flight SQL dataset, queried with projection, filter and limit pushed into its SELECT."""

    prefixes: ClassVar[tuple[str, ...]] = ("flightsql:",)
    dialect = FLIGHTSQL

    def __init__(self, dataset: Dataset) -> None:
        super().__init__(dataset)
        self._conn: Any = None
        self._cursor: Any = None

    # -- connection ---------------------------------------------------------------------------

    def relation(self) -> str:
        ref = self.dataset.from_.split(":", 1)[1]
        try:
            parts = split_identifier(ref)
        except ValueError as err:
            self.terminal(f"expected flightsql:[catalog.][schema.]table, got {ref!r}", err)
        return ".".join(quote_ident(p) for p in parts)

    def _uri(self, params: dict[str, Any]) -> str:
        endpoint = str(params.get("flightsql_endpoint") or "")
        if not endpoint:
            self.terminal("missing required param flightsql_endpoint (e.g. grpc://host:50051)")
        for prefix, scheme in _SCHEMES.items():
            if endpoint.startswith(prefix):
                self._label = f"{self.label_base} ({endpoint})"
                return scheme + endpoint[len(prefix) :]
        self.terminal(
            f"flightsql_endpoint {endpoint!r} needs a scheme: http:// or grpc:// (plaintext), "
            "https:// or grpc+tls:// (TLS)"
        )

    def _connect(self) -> Any:
        import adbc_driver_manager
        from adbc_driver_flightsql import dbapi

        params = resolve_params(self.dataset)
        uri = self._uri(params)
        kwargs = {
            key: str(params[p])
            for p, key in (("flightsql_username", "username"), ("flightsql_password", "password"))
            if params.get(p) not in (None, "")
        }
        try:
            return dbapi.connect(uri, db_kwargs=kwargs, autocommit=True)
        except adbc_driver_manager.Error as err:
            raise self.classify(err) from err

    def error_cause(self, err: BaseException) -> str:
        status = _status(err)
        text = first_line(err)
        if status in ("UNAUTHENTICATED", "UNAUTHORIZED"):
            return (
                f"the Flight SQL server refused the credentials ({text}); "
                "check flightsql_username and flightsql_password"
            )
        return text

    # -- schema -------------------------------------------------------------------------------

    def _execute(self, cur: Any, query: str) -> Any:
        cur.execute(query)
        return cur.fetch_record_batch()

    def load_columns(self) -> list[Column]:
        relation = self.relation()

        def query(conn: Any) -> pa.Schema:
            with conn.cursor() as cur:
                reader = self._execute(cur, f"SELECT * FROM {relation} LIMIT 0")
                schema: pa.Schema = reader.schema
                reader.close()
                return schema

        schema = self.catalog_query(self._connect(), query)
        return [Column(f.name, f.type, self.quote(f.name)) for f in schema]

    # -- scan ---------------------------------------------------------------------------------

    def scan(self, request: ScanRequest, con: duckdb.DuckDBPyConnection) -> SourceScan:
        schema = pa.schema([pa.field(c.name, c.arrow) for c in self.wanted_columns(request)])
        where_sql = transpile_where(request.where, "", dataset=self.dataset.name) if request.where else None
        self.close()
        try:
            self._conn = self._connect()
            self._cursor = self._conn.cursor()
            driver_reader = self.execute_pushed(
                lambda query: self._execute(self._cursor, query), request, where_sql
            )
        except RefreshError:
            self.close()
            raise
        except Exception as err:
            self.close()
            raise self.classify(err) from err
        return SourceScan(reader=self.reader(schema, iterate(driver_reader), on_close=self.close))

    def close(self) -> None:
        close_adbc(self.dataset.name, self.dialect.title, self._cursor, self._conn)
        self._cursor = self._conn = None
