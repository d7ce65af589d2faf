"""A real Arrow Flight SQL server for the tests: ``pyarrow.flight`` over gRPC, answering the Flight SQL
statement commands (``CommandStatementQuery`` in ``GetFlightInfo``, ``TicketStatementQuery`` in
``DoGet``) by running the SQL in DuckDB, with Flight's Basic -> Bearer token handshake.

The Flight SQL messages are protobuf; the few this server reads and writes are short and flat
(string and bytes fields, wrapped in ``google.protobuf.Any``), so they are encoded here by hand
rather than compiling ``FlightSql.proto``. The client side is the real ADBC Flight SQL driver.
"""

from __future__ import annotations

import base64
import secrets
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.flight as flight

USER, PASSWORD = "spicy", "s3cret"
#: A token the server accepts without a handshake, as one it issued earlier (a personal access token).
ISSUED_TOKEN = "pat-0123456789abcdef"
_SQL = "type.googleapis.com/arrow.flight.protocol.sql."

# -- protobuf, just enough ------------------------------------------------------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def decode(data: bytes) -> dict[int, bytes | int]:
    """Fields of a flat protobuf message: number -> bytes (length-delimited) or int (varint)."""
    fields: dict[int, bytes | int] = {}
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            fields[number], pos = _read_varint(data, pos)
        elif wire == 2:
            length, pos = _read_varint(data, pos)
            fields[number] = data[pos : pos + length]
            pos += length
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
    return fields


def encode(fields: dict[int, bytes]) -> bytes:
    return b"".join(_varint(n << 3 | 2) + _varint(len(v)) + v for n, v in fields.items())


def pack(message: str, fields: dict[int, bytes]) -> bytes:
    """``google.protobuf.Any`` holding the Flight SQL ``message``."""
    return encode({1: (_SQL + message).encode(), 2: encode(fields)})


def unpack(data: bytes) -> tuple[str, dict[int, bytes | int]]:
    """The Flight SQL message name and fields inside a ``google.protobuf.Any``."""
    wrapper = decode(data)
    type_url = wrapper.get(1, b"")
    value = wrapper.get(2, b"")
    assert isinstance(type_url, bytes) and isinstance(value, bytes)
    return type_url.decode().removeprefix(_SQL), decode(value)


# -- the server -----------------------------------------------------------------------------------


class _AuthFactory(flight.ServerMiddlewareFactory):  # type: ignore[misc]
    """Basic credentials buy a bearer token; every other call must carry a token."""

    def __init__(self) -> None:
        self.tokens: set[str] = {ISSUED_TOKEN}

    def start_call(self, info: Any, headers: dict[str, list[str]]) -> Any:
        auth = next(iter(headers.get("authorization", [])), "")
        if auth.startswith("Basic "):
            encoded = auth[6:]  # the Go client sends unpadded base64
            user, _, password = base64.b64decode(encoded + "=" * (-len(encoded) % 4)).decode().partition(":")
            if (user, password) != (USER, PASSWORD):
                raise flight.FlightUnauthenticatedError("invalid username or password")
            token = secrets.token_hex(8)
            self.tokens.add(token)
            return _BearerMiddleware(token)
        if auth.startswith("Bearer ") and auth[7:] in self.tokens:
            return None
        raise flight.FlightUnauthenticatedError("no valid credentials")


class _BearerMiddleware(flight.ServerMiddleware):  # type: ignore[misc]
    def __init__(self, token: str) -> None:
        self.token = token

    def sending_headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}


class _NoopAuth(flight.ServerAuthHandler):  # type: ignore[misc]
    """Handshake succeeds; the middleware checks the headers."""

    def authenticate(self, outgoing: Any, incoming: Any) -> None:
        return

    def is_valid(self, token: bytes) -> str:
        return ""


class DuckDBFlightSqlServer(flight.FlightServerBase):  # type: ignore[misc]
    """Flight SQL statements over one DuckDB database file; every query text is recorded."""

    def __init__(
        self, database: Path, location: str, batch_rows: int = 1000, tls: ServerTls | None = None
    ) -> None:
        tls_kwargs: dict[str, Any] = {}
        if tls is not None:
            tls_kwargs["tls_certificates"] = [flight.CertKeyPair(tls.cert, tls.key)]
            if tls.client_ca is not None:  # mutual TLS: clients must present a certificate it signed
                tls_kwargs.update(verify_client=True, root_certificates=tls.client_ca)
        super().__init__(
            location, auth_handler=_NoopAuth(), middleware={"auth": _AuthFactory()}, **tls_kwargs
        )
        self.database = database
        self.batch_rows = batch_rows
        self.queries: list[str] = []
        self._pending: dict[bytes, str] = {}
        self._lock = threading.Lock()
        #: Set to make every DoGet fail after its first batch (the server "vanishing" mid-stream).
        self.fail_after_first_batch = False
        #: Set to refuse every query with a WHERE clause (a server that rejects the pushed filter).
        self.reject_where = False

    def _run(self, sql: str) -> pa.RecordBatchReader:
        con = duckdb.connect(str(self.database), read_only=True)
        try:
            return con.sql(sql).to_arrow_reader(self.batch_rows)
        except duckdb.Error as err:
            con.close()
            raise flight.FlightServerError(f"query failed: {err}") from err

    def get_flight_info(self, context: Any, descriptor: Any) -> Any:
        name, fields = unpack(descriptor.command)
        if name != "CommandStatementQuery":
            raise flight.FlightServerError(f"unsupported command {name}")
        raw = fields.get(1, b"")
        assert isinstance(raw, bytes)
        sql = raw.decode()
        with self._lock:
            self.queries.append(sql)
        if self.reject_where and " WHERE " in sql:
            raise flight.FlightServerError("syntax error at WHERE (this server takes no filters)")
        # Plan only: DuckDB tells the result schema without running the query.
        con = duckdb.connect(str(self.database), read_only=True)
        try:
            schema = con.sql(f"SELECT * FROM ({sql}) LIMIT 0").to_arrow_table().schema
        except duckdb.Error as err:
            raise flight.FlightServerError(f"query failed: {err}") from err
        finally:
            con.close()
        handle = uuid.uuid4().hex.encode()
        with self._lock:
            self._pending[handle] = sql
        ticket = flight.Ticket(pack("TicketStatementQuery", {1: handle}))
        return flight.FlightInfo(schema, descriptor, [flight.FlightEndpoint(ticket, [])], -1, -1)

    def do_get(self, context: Any, ticket: Any) -> Any:
        name, fields = unpack(ticket.ticket)
        handle = fields.get(1, b"")
        with self._lock:
            sql = self._pending.pop(handle, None) if isinstance(handle, bytes) else None
        if name != "TicketStatementQuery" or sql is None:
            raise flight.FlightServerError("unknown ticket")
        reader = self._run(sql)
        if not self.fail_after_first_batch:
            return flight.RecordBatchStream(reader)

        def failing() -> Iterator[pa.RecordBatch]:
            yield next(iter(reader))
            raise flight.FlightUnavailableError("server going away")

        return flight.GeneratorStream(reader.schema, failing())


@dataclass(frozen=True)
class ServerTls:
    """The server's certificate and key (PEM), and the CA its clients' certificates must chain to."""

    cert: bytes
    key: bytes
    client_ca: bytes | None = None


@dataclass
class FlightSql:
    server: DuckDBFlightSqlServer
    endpoint: str
    database: Path
    params: dict[str, str] = field(default_factory=dict)


@contextmanager
def flightsql_server(
    database: Path, batch_rows: int = 1000, tls: ServerTls | None = None
) -> Iterator[FlightSql]:
    """Serve ``database`` on grpc://127.0.0.1:<ephemeral port> (grpc+tls:// with ``tls``);
    username/password required."""
    scheme = "grpc+tls" if tls is not None else "grpc"
    server = DuckDBFlightSqlServer(database, f"{scheme}://127.0.0.1:0", batch_rows, tls)
    endpoint = f"{scheme}://127.0.0.1:{server.port}"
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        yield FlightSql(
            server,
            endpoint,
            database,
            {"flightsql_endpoint": endpoint, "flightsql_username": USER, "flightsql_password": PASSWORD},
        )
    finally:
        server.shutdown()
        thread.join(timeout=10)
