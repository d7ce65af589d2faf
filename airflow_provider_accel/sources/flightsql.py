"""``flightsql:<dataset>``: a table of an Arrow Flight SQL server, read through ADBC's Flight SQL driver.

Params (Spice's): ``flightsql_endpoint`` (required; ``http://`` or ``grpc://`` for plaintext,
``https://`` or ``grpc+tls://`` for TLS, as Spice reads them), ``flightsql_username`` and
``flightsql_password`` (Flight's Basic-auth handshake; the bearer token the server returns is sent
with every later call). A server that hands out tokens itself (Dremio's personal access tokens, a
Spice runtime's API key, InfluxDB 3) takes ``flightsql_token`` instead: sent as ``Authorization:
Bearer <token>`` on every call. Spice documents no token param for this connector; the name is this
provider's own, in Spice's ``flightsql_`` namespace, and exclusive with the username/password pair.
``<dataset>`` is the fully qualified name, e.g. ``my_catalog.schema.table``.
Install with ``pip install 'airflow-provider-accel[flightsql]'``.

TLS (Spice's params): a TLS endpoint verifies the server's certificate against the system's CAs, or
against ``flightsql_tls_ca_certificate_file`` (a PEM file) for a private CA; the host name is checked
without the port. Mutual TLS presents a client certificate: ``flightsql_tls_client_certificate_file``
with ``flightsql_tls_client_key_file``, or the PEM text itself in ``flightsql_tls_client_certificate``
with ``flightsql_tls_client_key`` (e.g. ``${secrets:...}``); the two forms exclude each other and a
certificate needs its key. A certificate the client cannot verify (or a TLS/plaintext mismatch) is
terminal: retrying cannot fix it. Unlike Spice, TLS params on a plaintext endpoint are an error, not
ignored, so a mistyped scheme never sends credentials in the clear while the spicepod asks for TLS.

Pushdown, as Spice does it: one ``SELECT <columns> FROM <dataset> [WHERE <filter>] [LIMIT n]`` goes
to the server (``GetFlightInfo``, then ``DoGet`` of its endpoints) and the result streams back as
Arrow batches, never whole. The filter is written in ANSI SQL (sqlglot's generic dialect, double-
quoted identifiers) since Flight SQL servers speak many dialects; when the server rejects it, the
query is sent again without it (the accelerator re-applies the filter anyway).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
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


#: Spice's TLS params -> what they hold (a path or the PEM text), for checks and messages.
_TLS_CA_FILE = "flightsql_tls_ca_certificate_file"
_CLIENT_FILES = ("flightsql_tls_client_certificate_file", "flightsql_tls_client_key_file")
_CLIENT_INLINE = ("flightsql_tls_client_certificate", "flightsql_tls_client_key")
#: gRPC's words for a TLS handshake the client refused (untrusted or mismatched certificate) or a
#: TLS client talking to a plaintext server: configuration, never cured by retrying.
_TLS_FAILURE = re.compile(r"x509: |tls: |certificate|TLS handshake|SSL routines", re.IGNORECASE)


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
        token = params.get("flightsql_token")
        if token not in (None, ""):
            if kwargs:
                self.terminal(
                    "flightsql_token and flightsql_username/flightsql_password both set: "
                    "authenticate with the token or with the username and password, not both"
                )
            from adbc_driver_flightsql import DatabaseOptions

            kwargs[DatabaseOptions.AUTHORIZATION_HEADER.value] = f"Bearer {token}"
        kwargs.update(self._tls_options(params, tls=uri.startswith("grpc+tls://")))
        try:
            return dbapi.connect(uri, db_kwargs=kwargs, autocommit=True)
        except adbc_driver_manager.Error as err:
            raise self.classify(err) from err

    def _tls_options(self, params: dict[str, Any], tls: bool) -> dict[str, str]:
        """The ADBC driver's TLS options from Spice's params (root CA, client identity)."""
        from adbc_driver_flightsql import DatabaseOptions

        given = [
            p for p in (_TLS_CA_FILE, *_CLIENT_FILES, *_CLIENT_INLINE) if params.get(p) not in (None, "")
        ]
        if not tls:
            if given:
                self.terminal(
                    f"{', '.join(given)} set, but flightsql_endpoint is plaintext: use https:// or "
                    "grpc+tls:// for TLS, or remove the TLS params"
                )
            return {}
        options: dict[str, str] = {}
        if _TLS_CA_FILE in given:
            options[DatabaseOptions.TLS_ROOT_CERTS.value] = self._read_pem(params, _TLS_CA_FILE)
        files = [p for p in _CLIENT_FILES if p in given]
        inline = [p for p in _CLIENT_INLINE if p in given]
        if files and inline:
            self.terminal(
                f"{', '.join(files)} and {', '.join(inline)} both set: give the client certificate "
                "and key either as files or inline, not both"
            )
        for pair in (_CLIENT_FILES, _CLIENT_INLINE):
            chosen = [p for p in pair if p in given]
            if len(chosen) == 1:
                missing = next(p for p in pair if p not in chosen)
                self.terminal(f"{chosen[0]} is set without {missing}: a client certificate needs its key")
        if files:
            cert, key = (self._read_pem(params, p) for p in _CLIENT_FILES)
        elif inline:
            cert, key = (str(params[p]) for p in _CLIENT_INLINE)
        if files or inline:
            options[DatabaseOptions.MTLS_CERT_CHAIN.value] = cert
            options[DatabaseOptions.MTLS_PRIVATE_KEY.value] = key
        return options

    def _read_pem(self, params: dict[str, Any], name: str) -> str:
        path = Path(str(params[name])).expanduser()
        try:
            return path.read_text()
        except (OSError, UnicodeDecodeError) as err:
            self.terminal(f"{name}: cannot read the PEM file {str(path)!r} ({err})", err)

    def is_transient(self, err: BaseException) -> bool:
        if _TLS_FAILURE.search(str(err)):
            return False
        return super().is_transient(err)

    def error_cause(self, err: BaseException) -> str:
        status = _status(err)
        text = first_line(err)
        if status in ("UNAUTHENTICATED", "UNAUTHORIZED"):
            return (
                f"the Flight SQL server refused the credentials ({text}); "
                "check flightsql_username and flightsql_password, or flightsql_token"
            )
        if _TLS_FAILURE.search(text):
            return (
                f"the TLS handshake with the Flight SQL server failed ({text}); if the server's "
                "certificate is signed by a private CA, set flightsql_tls_ca_certificate_file to that CA's "
                "PEM file, check that the endpoint's host name is one the certificate names, and that the "
                "server speaks TLS (https:// or grpc+tls://) or plaintext (http:// or grpc://) as the "
                "endpoint says"
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
