"""``postgres:schema.table`` (or ``postgres:table``): a PostgreSQL table streamed as Arrow through ADBC.

Connection: Spice's ``pg_host``, ``pg_port``, ``pg_db``, ``pg_user``, ``pg_pass``, ``pg_sslmode``, or
``pg_connection_string`` (a libpq URI or ``key=value`` string), or ``postgres_conn_id`` (an Airflow
Postgres connection; explicit ``pg_*`` params override its fields). ``pg_batch_bytes`` sets the size of
the Arrow batches ADBC builds (default 16 MiB).

Why ADBC: its PostgreSQL driver reads the server's ``COPY ... TO STDOUT (FORMAT binary)`` stream
straight into Arrow buffers in C, batch by batch, so memory stays bounded and no Python object is
created per value (see ``python -m bench.source_memory`` for the comparison with psycopg).

Pushdown: the projection, the filter (transpiled DuckDB -> PostgreSQL with sqlglot) and the limit
go into the query the server runs. The session TimeZone is set to the accelerator's DuckDB
TimeZone so timestamp comparisons mean the same on both sides. When the server rejects the
transpiled filter, the query is retried without it (the accelerator filters anyway).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import pyarrow as pa

from airflow_provider_accel.exceptions import RefreshError
from airflow_provider_accel.sources._common import (
    duckdb_timezone,
    quote_ident,
    resolve_params,
    split_identifier,
    tcp_reachable,
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


def _sqlstate(err: BaseException) -> str | None:
    return getattr(err, "sqlstate", None) or None


POSTGRES = Dialect(
    title="PostgreSQL",
    sqlglot="postgres",
    conn_id_param="postgres_conn_id",
    param_prefix="pg_",
    connection_fields=(
        ("host", "pg_host"),
        ("port", "pg_port"),
        ("schema", "pg_db"),
        ("login", "pg_user"),
        ("password", "pg_pass"),
        ("extra.sslmode", "pg_sslmode"),
    ),
    error_code=_sqlstate,
    # Rejections of a transpiled filter: syntax, unknown function/operator, type mismatch, bad literal.
    pushdown_rejected=frozenset({"42601", "42883", "42804", "42846", "42725", "22007", "22008", "0A000"}),
    # SQLSTATE classes of the network or the server's state (connection, resources, operator
    # intervention, system, transaction rollback, object not in prerequisite state).
    transient=frozenset({"08", "53", "57", "58", "40", "55"}),
    conn_types=("postgres", "postgresql"),
)

#: PostgreSQL base types ADBC returns natively, and their Arrow types.
_NATIVE: dict[str, pa.DataType] = {
    "bool": pa.bool_(),
    "int2": pa.int16(),
    "int4": pa.int32(),
    "int8": pa.int64(),
    "oid": pa.uint32(),
    "float4": pa.float32(),
    "float8": pa.float64(),
    "text": pa.string(),
    "varchar": pa.string(),
    "bpchar": pa.string(),
    "name": pa.string(),
    "char": pa.string(),
    "bytea": pa.binary(),
    "date": pa.date32(),
    "time": pa.time64("us"),
    "timestamp": pa.timestamp("us"),
    "timestamptz": pa.timestamp("us", tz="UTC"),
    "interval": pa.month_day_nano_interval(),
    "json": pa.json_(),
    "jsonb": pa.json_(),
    "uuid": pa.uuid(),
}
#: Types read as their text form (``::text``): their meaning is the text, and DuckDB has no equivalent.
_AS_TEXT = {"inet", "cidr", "macaddr", "macaddr8", "xml", "citext", "bit", "varbit", "timetz", "tsvector"}
#: Element types of arrays that ADBC reads natively.
_ARRAY_ELEMENTS = {k for k in _NATIVE if k not in ("json", "jsonb", "interval", "char", "uuid")}

#: Precision/scale given to NUMERIC without a declared precision (DuckDB's widest decimal).
UNCONSTRAINED_NUMERIC = (38, 10)

_SCHEMA_SQL = """
SELECT a.attname, t.typname, t.typtype, CASE WHEN t0.typtype = 'd' THEN t0.typtypmod ELSE a.atttypmod END,
       et.typname, format_type(a.atttypid, a.atttypmod)
FROM pg_attribute a
JOIN pg_type t0 ON t0.oid = a.atttypid
JOIN pg_type t ON t.oid = CASE WHEN t0.typtype = 'd' THEN t0.typbasetype ELSE t0.oid END
LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typcategory = 'A'
WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""


@dataclass(frozen=True)
class PgTarget:
    """Where to connect (a libpq URI without exposing the password in messages) and what to read."""

    uri: str
    host: str | None
    port: int
    safe: str  # host:port/db, for messages
    relation: str  # quoted, e.g. "public"."t"


def _numeric_type(typmod: int) -> pa.DataType | None:
    if typmod < 0:
        return pa.decimal128(*UNCONSTRAINED_NUMERIC)
    precision, scale = ((typmod - 4) >> 16) & 0xFFFF, (typmod - 4) & 0xFFFF
    if precision > 38 or scale > precision:
        return None
    return pa.decimal128(precision, scale)


def _parse_conninfo(text: str) -> dict[str, str]:
    """libpq URI or ``key=value`` conninfo -> dict of libpq keywords."""
    if text.startswith(("postgres://", "postgresql://")):
        parts = urlsplit(text)
        out: dict[str, str] = {}
        if parts.hostname:
            out["host"] = unquote(parts.hostname)
        if parts.port:
            out["port"] = str(parts.port)
        if parts.username:
            out["user"] = unquote(parts.username)
        if parts.password:
            out["password"] = unquote(parts.password)
        if parts.path and parts.path != "/":
            out["dbname"] = unquote(parts.path.lstrip("/"))
        out.update(dict(parse_qsl(parts.query)))
        return out
    import shlex

    out = {}
    for token in shlex.split(text):
        key, _, value = token.partition("=")
        out[key.strip()] = value
    return out


class PostgresSource(DatabaseSource):
    """A PostgreSQL table (or view) read through ADBC with projection, filter and limit pushed down."""

    prefixes: ClassVar[tuple[str, ...]] = ("postgres:",)
    dialect = POSTGRES

    def __init__(self, dataset: Dataset) -> None:
        super().__init__(dataset)
        self._conn: Any = None
        self._cursor: Any = None
        self._target: PgTarget | None = None
        #: ADBC's batch size hint (param ``pg_batch_bytes``; the driver's default is 16 MiB per batch).
        self.batch_bytes: int | None = None

    # -- connection -------------------------------------------------------------------------

    def _table_ref(self) -> str:
        ref = self.dataset.from_.split(":", 1)[1]
        try:
            parts = split_identifier(ref)
        except ValueError as err:
            self.terminal(f"expected postgres:schema.table or postgres:table, got {ref!r}", err)
        if len(parts) > 2:
            self.terminal(f"expected postgres:schema.table or postgres:table, got {ref!r}")
        return ".".join(quote_ident(p) for p in parts)

    def relation(self) -> str:
        return self.target().relation

    def target(self) -> PgTarget:
        if self._target is not None:
            return self._target
        params = self.connection_params(resolve_params(self.dataset))
        keywords: dict[str, str] = {}
        if params.get("pg_connection_string"):
            keywords.update(_parse_conninfo(str(params["pg_connection_string"])))
        for param, keyword in (
            ("pg_host", "host"),
            ("pg_port", "port"),
            ("pg_db", "dbname"),
            ("pg_user", "user"),
            ("pg_pass", "password"),
            ("pg_sslmode", "sslmode"),
        ):
            if params.get(param) not in (None, ""):
                keywords[keyword] = str(params[param])
        if params.get("pg_batch_bytes"):
            self.batch_bytes = int(params["pg_batch_bytes"])
        keywords.setdefault("host", "localhost")
        keywords.setdefault("port", "5432")
        keywords.setdefault("connect_timeout", "10")
        # Spice's default sslmode is "require"; a local server without TLS then needs pg_sslmode: disable.
        # libpq's own default ("prefer") is kept here because Airflow connections rarely set it.
        host = keywords["host"]
        user = quote(keywords.pop("user", ""), safe="")
        password = keywords.pop("password", None)
        auth = user + (":" + quote(password, safe="") if password is not None else "")
        dbname = keywords.pop("dbname", "")
        port = int(keywords["port"])
        # Hosts may be unix socket directories: those go into the query string, not the authority.
        query = "&".join(f"{k}={quote(v, safe='')}" for k, v in keywords.items())
        uri = f"postgresql://{auth}{'@' if auth else ''}/{quote(dbname, safe='')}?{query}"
        self._target = PgTarget(
            uri=uri,
            host=None if host.startswith("/") else host,
            port=port,
            safe=f"{host}:{port}/{dbname}",
            relation=self._table_ref(),
        )
        self._label = f"{self.label_base} ({self._target.safe})"
        return self._target

    def _connect(self) -> Any:
        import adbc_driver_manager
        from adbc_driver_postgresql import dbapi

        target = self.target()
        try:
            conn = dbapi.connect(target.uri, autocommit=True)
        except adbc_driver_manager.Error as err:
            # libpq reports "unreachable" and "refused by the server" with the same type and no SQLSTATE:
            # a TCP probe tells them apart without parsing the message.
            if target.host is not None and tcp_reachable(target.host, target.port) is not None:
                self.transient(f"cannot reach the PostgreSQL server: {err}", err)
            # Reachable but not accepting yet: shutting down / starting up (57P03), too many clients (53300).
            if self.is_transient(err) and _sqlstate(err) is not None:
                self.transient(f"the PostgreSQL server is not accepting connections: {first_line(err)}", err)
            self.terminal(f"the PostgreSQL server refused the connection: {first_line(err)}", err)
        return conn

    def error_cause(self, err: BaseException) -> str:
        return first_line(err)

    # -- schema ------------------------------------------------------------------------------

    def load_columns(self) -> list[Column]:
        target = self.target()

        def query(conn: Any) -> list[Any]:
            with conn.cursor() as cur:
                cur.execute(_SCHEMA_SQL, (target.relation,))
                return list(cur.fetchall())

        rows = self.catalog_query(self._connect(), query)
        if not rows:
            self.terminal(f"table {target.relation} not found (or no columns visible)")
        return [self._column(*row) for row in rows]

    def _column(
        self, name: str, typname: str, typtype: str, typmod: int, elem: str | None, display: str
    ) -> Column:
        quoted = quote_ident(name)
        if typname in _NATIVE:
            return Column(name, _NATIVE[typname], quoted, declared=display)
        if typname == "numeric":
            decimal = _numeric_type(typmod)
            if decimal is None:
                self.terminal(
                    f"column {name!r} has type {display}, wider than DuckDB's DECIMAL(38): unsupported"
                )
            # Unconstrained NUMERIC is rounded by the server to the documented scale, so an
            # out-of-range value is the server's "numeric field overflow" (terminal), not a silent loss.
            select = quoted if typmod >= 0 else f"{quoted}::numeric(38,10) AS {quoted}"
            return Column(name, decimal, select, declared=display)
        if typname == "money":
            return Column(
                name, pa.decimal128(38, 2), f"{quoted}::numeric(38,2) AS {quoted}", declared=display
            )
        if typname in _AS_TEXT or typtype == "e":
            return Column(name, pa.string(), f"{quoted}::text AS {quoted}", declared=display)
        if elem is not None and elem in _ARRAY_ELEMENTS:
            return Column(name, pa.list_(_NATIVE[elem]), quoted, declared=display)
        self.terminal(f"column {name!r} has type {display}, which is not supported")

    # -- scan --------------------------------------------------------------------------------

    def scan(self, request: ScanRequest, con: duckdb.DuckDBPyConnection) -> SourceScan:
        schema = pa.schema([pa.field(c.name, c.arrow) for c in self.wanted_columns(request)])
        tz = duckdb_timezone(con)
        where_sql = (
            transpile_where(request.where, "postgres", dataset=self.dataset.name) if request.where else None
        )

        self.close()
        conn = self._connect()
        self._conn = conn
        try:
            cur = conn.cursor()
            self._cursor = cur
            if self.batch_bytes:
                cur.adbc_statement.set_options(
                    **{"adbc.postgresql.batch_size_hint_bytes": str(self.batch_bytes)}
                )
            # Same TimeZone as the accelerator's DuckDB: a pushed-down timestamp literal compared with a
            # timestamptz column then selects exactly the rows DuckDB would.
            try:
                cur.execute("SELECT set_config('TimeZone', $1, false)", (tz,))
                cur.fetchall()
            except Exception as err:
                log.info(
                    "Dataset %s: PostgreSQL does not know TimeZone %s (%s); filter not pushed down",
                    self.dataset.name,
                    tz,
                    first_line(err),
                )
                where_sql = None
            self.execute_pushed(cur.execute, request, where_sql)
            driver_reader = cur.fetch_record_batch()
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
