"""``mysql:database.table`` (or ``mysql:table``): a MySQL/MariaDB table streamed in Arrow batches.

Connection: Spice's ``mysql_host``, ``mysql_tcp_port``, ``mysql_db``, ``mysql_user``, ``mysql_pass``,
``mysql_sslmode`` (``disabled``/``required``/...; default: no TLS), or ``mysql_connection_string``
(``mysql://user:pass@host:port/db``), or ``mysql_conn_id`` (an Airflow MySQL connection; explicit
``mysql_*`` params override its fields). The database in ``from:`` wins over ``mysql_db``.

Streaming: PyMySQL's unbuffered ``SSCursor`` reads rows off the socket as they arrive; every
``batch_rows`` rows (param ``mysql_batch_rows``, default 10,000) become one Arrow record batch whose
types come from ``information_schema.COLUMNS`` (not guessed from values), so an all-NULL batch has
the same schema as the others.

Pushdown: projection, the filter (transpiled DuckDB -> MySQL with sqlglot) and the limit. The
session time zone is UTC (TIMESTAMP values are read as UTC instants); when the accelerator's DuckDB
TimeZone is not UTC, a filter that involves time-zone-dependent values is not pushed down.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qsl, unquote, urlsplit

import pyarrow as pa

from airflow_provider_accel.sources._common import (
    DEFAULT_BATCH_ROWS,
    batches_from_rows,
    duckdb_timezone,
    is_utc,
    quote_ident,
    resolve_params,
    split_identifier,
    transpile_where,
    where_references,
)
from airflow_provider_accel.sources.base import ScanRequest, SourceScan
from airflow_provider_accel.sources.database import Column, DatabaseSource, Dialect, plain

if TYPE_CHECKING:
    import duckdb

    from airflow_provider_accel.spicepod.model import Dataset

log = logging.getLogger(__name__)


def _errno(err: BaseException) -> int | None:
    # PyMySQL's args are (errno, message); errno 0 is "no server error" (e.g. a closed connection).
    code = err.args[0] if err.args else None
    return code if isinstance(code, int) and code and not isinstance(code, bool) else None


# MySQL client/server error numbers (https://dev.mysql.com/doc/mysql-errors/8.0/en/).
MYSQL = Dialect(
    title="MySQL",
    sqlglot="mysql",
    quote="`",
    conn_id_param="mysql_conn_id",
    param_prefix="mysql_",
    connection_fields=(
        ("host", "mysql_host"),
        ("port", "mysql_tcp_port"),
        ("schema", "mysql_db"),
        ("login", "mysql_user"),
        ("password", "mysql_pass"),
    ),
    error_code=_errno,
    # Errors a transpiled filter can cause: syntax, unknown function, wrong arguments, bad value.
    pushdown_rejected=frozenset({1064, 1305, 1582, 1583, 1584, 1292, 1525, 1411, 3047}),
    transient=frozenset(
        {
            1040,  # too many connections
            1053,  # server shutdown in progress
            1205,  # lock wait timeout
            1213,  # deadlock
            1927,  # connection killed (MariaDB)
            4031,  # disconnected by the server for inactivity
        }
        # Client-side errors (2xxx: can't connect, server gone away, lost connection...) concern the
        # connection itself, not the query.
        | set(range(2000, 3000))
    ),
    conn_types=("mysql", "mariadb"),
)

_INT_TYPES: dict[str, tuple[pa.DataType, pa.DataType]] = {
    "tinyint": (pa.int8(), pa.uint8()),
    "smallint": (pa.int16(), pa.uint16()),
    "mediumint": (pa.int32(), pa.uint32()),
    "int": (pa.int32(), pa.uint32()),
    "integer": (pa.int32(), pa.uint32()),
    "bigint": (pa.int64(), pa.uint64()),
}
_TEXT_TYPES = {
    "char",
    "varchar",
    "tinytext",
    "text",
    "mediumtext",
    "longtext",
    "enum",
    "set",
    "inet4",
    "inet6",
}
_BINARY_TYPES = {"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"}

_INFO_SQL = """
SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, NUMERIC_PRECISION, NUMERIC_SCALE
FROM information_schema.COLUMNS
WHERE TABLE_SCHEMA = COALESCE(%s, DATABASE()) AND TABLE_NAME = %s
ORDER BY ORDINAL_POSITION
"""
# MariaDB stores JSON as LONGTEXT with a json_valid() check constraint: that constraint is the only
# trace of the declared type.
_MARIADB_JSON_SQL = """
SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS
WHERE CONSTRAINT_SCHEMA = COALESCE(%s, DATABASE()) AND TABLE_NAME = %s
"""
_JSON_CHECK = re.compile(r"json_valid\(`((?:[^`]|``)+)`\)", re.IGNORECASE)


@dataclass(frozen=True)
class MyTarget:
    kwargs: dict[str, Any]  # pymysql.connect arguments (with the password: never logged)
    safe: str  # host:port/db, for messages
    database: str | None
    table: str


def _bool(values: list[Any]) -> pa.Array:
    # BOOLEAN is TINYINT(1) and BIT(1) arrives as bytes: both become a real boolean.
    out: list[bool | None] = []
    for v in values:
        if v is None:
            out.append(None)
        elif isinstance(v, bytes):
            out.append(v != b"\x00" * len(v))
        else:
            out.append(bool(v))
    return pa.array(out, type=pa.bool_())


def _bits(values: list[Any]) -> pa.Array:
    return pa.array([None if v is None else int.from_bytes(v, "big") for v in values], type=pa.uint64())


def _uuid(values: list[Any]) -> pa.Array:
    storage = pa.array(
        [None if v is None else uuid.UUID(v if isinstance(v, str) else v.decode()).bytes for v in values],
        type=pa.binary(16),
    )
    return pa.ExtensionArray.from_storage(pa.uuid(), storage)


def _json(values: list[Any]) -> pa.Array:
    storage = pa.array([v.decode() if isinstance(v, bytes) else v for v in values], type=pa.string())
    return pa.ExtensionArray.from_storage(pa.json_(), storage)


def _text(values: list[Any]) -> pa.Array:
    # SET columns arrive as Python sets from PyMySQL's converters; keep MySQL's comma-joined text.
    return pa.array(
        [
            ",".join(sorted(v)) if isinstance(v, set) else v.decode() if isinstance(v, bytes) else v
            for v in values
        ],
        type=pa.string(),
    )


def _time(values: list[Any]) -> pa.Array:
    out: list[dt.time | None] = []
    for v in values:
        if v is None:
            out.append(None)
            continue
        if isinstance(v, dt.timedelta):
            if not dt.timedelta(0) <= v < dt.timedelta(days=1):
                raise ValueError(f"TIME value {v} is not a time of day")
            v = (dt.datetime.min + v).time()
        out.append(v)
    return pa.array(out, type=pa.time64("us"))


class MySQLSource(DatabaseSource):
    """A MySQL or MariaDB table read with an unbuffered cursor, with projection/filter/limit pushed down."""

    prefixes: ClassVar[tuple[str, ...]] = ("mysql:",)
    dialect = MYSQL

    def __init__(self, dataset: Dataset) -> None:
        super().__init__(dataset)
        self._conn: Any = None
        self._target: MyTarget | None = None
        self.batch_rows = DEFAULT_BATCH_ROWS

    # -- connection -------------------------------------------------------------------------

    def target(self) -> MyTarget:
        if self._target is not None:
            return self._target
        params = self.connection_params(resolve_params(self.dataset))
        kwargs: dict[str, Any] = {}
        if params.get("mysql_connection_string"):
            parts = urlsplit(str(params["mysql_connection_string"]))
            kwargs.update(
                host=parts.hostname,
                port=parts.port,
                user=unquote(parts.username) if parts.username else None,
                password=unquote(parts.password) if parts.password else None,
                database=unquote(parts.path.lstrip("/")) or None,
            )
            query = dict(parse_qsl(parts.query))
            if "sslmode" in query:
                params.setdefault("mysql_sslmode", query["sslmode"])
        for param, key in (
            ("mysql_host", "host"),
            ("mysql_tcp_port", "port"),
            ("mysql_db", "database"),
            ("mysql_user", "user"),
            ("mysql_pass", "password"),
        ):
            if params.get(param) not in (None, ""):
                kwargs[key] = params[param]
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        kwargs.setdefault("host", "localhost")
        kwargs["port"] = int(kwargs.get("port") or 3306)
        kwargs.setdefault("user", "root")
        if str(params.get("mysql_sslmode", "")).lower() in (
            "required",
            "require",
            "verify_ca",
            "verify_full",
        ):
            kwargs["ssl"] = {"check_hostname": params["mysql_sslmode"].lower() == "verify_full"}
        if params.get("mysql_batch_rows"):
            self.batch_rows = int(params["mysql_batch_rows"])

        ref = self.dataset.from_.split(":", 1)[1]
        try:
            parts_ = split_identifier(ref)
        except ValueError as err:
            self.terminal(f"expected mysql:database.table or mysql:table, got {ref!r}", err)
        if len(parts_) > 2:
            self.terminal(f"expected mysql:database.table or mysql:table, got {ref!r}")
        database = parts_[0] if len(parts_) == 2 else kwargs.get("database")
        if database:
            kwargs["database"] = database
        self._target = MyTarget(
            kwargs=kwargs,
            safe=f"{kwargs['host']}:{kwargs['port']}/{kwargs.get('database', '')}",
            database=database,
            table=parts_[-1],
        )
        self._label = f"{self.label_base} ({self._target.safe})"
        return self._target

    def _connect(self, unbuffered: bool = False) -> Any:
        import pymysql
        import pymysql.cursors

        target = self.target()
        try:
            return pymysql.connect(
                **target.kwargs,
                charset="utf8mb4",
                connect_timeout=10,
                autocommit=True,
                # UTC session: TIMESTAMP columns come back as UTC wall time, read as UTC instants.
                init_command="SET time_zone = '+00:00'",
                cursorclass=pymysql.cursors.SSCursor if unbuffered else pymysql.cursors.Cursor,
            )
        except Exception as err:
            raise self.classify(err) from err

    def error_cause(self, err: BaseException) -> str:
        # PyMySQL's args are (errno, message): the message alone reads better.
        return str(err.args[1]) if len(err.args) > 1 else str(err)

    # -- schema ------------------------------------------------------------------------------

    def load_columns(self) -> list[Column]:
        target = self.target()

        def query(conn: Any) -> tuple[list[Any], set[str]]:
            with conn.cursor() as cur:
                cur.execute(_INFO_SQL, (target.database, target.table))
                rows = cur.fetchall()
                json_columns: set[str] = set()
                try:
                    cur.execute(_MARIADB_JSON_SQL, (target.database, target.table))
                    for (clause,) in cur.fetchall():
                        json_columns.update(m.replace("``", "`") for m in _JSON_CHECK.findall(clause or ""))
                except Exception as err:  # MySQL < 8.0.16 has no CHECK_CONSTRAINTS; JSON is a real type there
                    log.debug("Dataset %s: no CHECK_CONSTRAINTS: %s", self.dataset.name, err)
            return rows, json_columns

        rows, json_columns = self.catalog_query(self._connect(), query)
        if not rows:
            self.terminal(f"table {target.table!r} not found in database {target.database or '(default)'!r}")
        return [self._column(*row, json_columns=json_columns) for row in rows]

    def _column(
        self,
        name: str,
        data_type: str,
        column_type: str,
        precision: int | None,
        scale: int | None,
        *,
        json_columns: set[str],
    ) -> Column:
        data_type = data_type.lower()
        column_type = column_type.lower()
        quoted = quote_ident(name, "`")
        unsigned = "unsigned" in column_type
        if data_type == "tinyint" and column_type.startswith("tinyint(1)") and not unsigned:
            arrow: pa.DataType = pa.bool_()
            return Column(name, arrow, quoted, _bool)
        if data_type in _INT_TYPES:
            arrow = _INT_TYPES[data_type][1 if unsigned else 0]
            return Column(name, arrow, quoted, plain(arrow))
        if data_type == "bit":
            if column_type == "bit(1)":
                return Column(name, pa.bool_(), quoted, _bool)
            return Column(name, pa.uint64(), quoted, _bits)
        if data_type == "decimal":
            if precision is None or precision > 38:
                self.terminal(
                    f"column {name!r} has type {column_type}, wider than DuckDB's DECIMAL(38): unsupported"
                )
            arrow = pa.decimal128(int(precision), int(scale or 0))
            return Column(name, arrow, quoted, plain(arrow))
        if data_type == "float":
            return Column(name, pa.float32(), quoted, plain(pa.float32()))
        if data_type in ("double", "real"):
            return Column(name, pa.float64(), quoted, plain(pa.float64()))
        if data_type == "year":
            return Column(name, pa.int16(), quoted, plain(pa.int16()))
        if data_type == "json" or name in json_columns:
            return Column(name, pa.json_(), quoted, _json)
        if data_type == "uuid":
            return Column(name, pa.uuid(), quoted, _uuid)
        if data_type in _TEXT_TYPES:
            return Column(name, pa.string(), quoted, _text)
        if data_type in _BINARY_TYPES:
            return Column(name, pa.binary(), quoted, plain(pa.binary()))
        if data_type == "date":
            return Column(name, pa.date32(), quoted, plain(pa.date32()))
        if data_type == "datetime":
            return Column(name, pa.timestamp("us"), quoted, plain(pa.timestamp("us")))
        if data_type == "timestamp":
            # Naive UTC wall time from the UTC session; pyarrow reads naive datetimes as UTC.
            arrow = pa.timestamp("us", tz="UTC")
            return Column(name, arrow, quoted, plain(arrow))
        if data_type == "time":
            return Column(name, pa.time64("us"), quoted, _time)
        self.terminal(f"column {name!r} has type {column_type}, which is not supported")

    # -- scan --------------------------------------------------------------------------------

    def pushable_where(self, where: str, tz: str) -> str | None:
        """The filter in MySQL's dialect, or ``None`` when pushing it could drop rows DuckDB keeps."""
        if not is_utc(tz):
            columns, kinds = where_references(where)
            tz_columns = {c.name for c in self.columns() if getattr(c.arrow, "tz", None)}
            # MySQL evaluates these in its UTC session, DuckDB in its own TimeZone.
            tz_kinds = {"timestamptz", "currenttimestamp", "now", "currentdate", "*"}
            if columns & tz_columns or kinds & tz_kinds:
                log.info(
                    "Dataset %s: DuckDB TimeZone is %s; time-zone dependent filter not pushed to MySQL",
                    self.dataset.name,
                    tz,
                )
                return None
        return transpile_where(where, "mysql", dataset=self.dataset.name)

    def relation(self) -> str:
        target = self.target()
        table = self.quote(target.table)
        return f"{self.quote(target.database)}.{table}" if target.database else table

    def scan(self, request: ScanRequest, con: duckdb.DuckDBPyConnection) -> SourceScan:
        chosen = self.wanted_columns(request)
        schema = pa.schema([pa.field(c.name, c.arrow) for c in chosen])
        where_sql = self.pushable_where(request.where, duckdb_timezone(con)) if request.where else None

        self.close()
        conn = self._connect(unbuffered=True)
        self._conn = conn
        try:
            cur = conn.cursor()
            self.execute_pushed(cur.execute, request, where_sql)
        except Exception as err:
            self.close()
            raise self.classify(err) from err

        converters = self.converters(chosen)

        def batches() -> Iterator[pa.RecordBatch]:
            yield from batches_from_rows(iter(()), schema, converters, self.batch_rows, fetch=cur.fetchmany)

        return SourceScan(reader=self.reader(schema, batches(), on_close=self.close))

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            # Not cursor.close(): on an unbuffered cursor it reads the rest of the result. Mark the
            # pending result finished instead, so its finaliser doesn't read a closed socket either.
            result = getattr(conn, "_result", None)
            if result is not None and getattr(result, "unbuffered_active", False):
                result.unbuffered_active = False
            try:
                conn.close()
            except Exception as err:  # already broken: nothing to release
                log.debug("Dataset %s: closing the MySQL connection: %s", self.dataset.name, err)
