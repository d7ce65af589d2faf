"""``odbc:path.to.table``: a table of any database with an ODBC driver, read as Arrow batches by arrow-odbc.

Params (Spice's): ``odbc_connection_string`` (required, e.g.
``Driver={PostgreSQL Unicode};Server=db;Port=5432;Database=app;Uid=me;Pwd=${secrets:pg_pass}``),
``sql_dialect`` (``postgresql``, ``mysql``, ``sqlite``, ``databricks`` or ``athena``; by default
detected from ``Driver=`` as Spice does), ``odbc_max_bytes_per_batch``, ``odbc_max_num_rows_per_batch``,
``odbc_max_text_size`` and ``odbc_max_binary_size``. Install with
``pip install 'airflow-provider-accel[odbc]'``; the driver manager (unixODBC) and the drivers come from
the machine (``scripts/odbc.sh`` installs Debian's PostgreSQL and MariaDB drivers).

Streaming: arrow-odbc binds column buffers for a block of rows and the driver fills them (ODBC bulk
fetch); each block becomes one Arrow record batch in Rust, with no Python object per value. The
buffers are sized by the largest value each column can hold times the rows per batch, capped by
``odbc_max_bytes_per_batch``: memory stays bounded whatever the table's size. Default 64 MiB (Spice:
512 MB; 64 MiB keeps a refresh's peak near the other database sources'), rows per batch 65,536.

Pushdown: projection, the filter (transpiled from DuckDB's dialect with sqlglot, to the dialect named
by ``sql_dialect`` or detected from the driver) and the limit go into the query the driver sends; a
filter the server rejects (a syntax or unknown-function SQLSTATE) is dropped and the query sent
again without it. An unknown driver gets ANSI SQL with double-quoted identifiers (Spice's default
dialect).

Types are what the driver reports for the result set, corrected where drivers are known to mislead:
MySQL/MariaDB unsigned integers are widened (ODBC has no unsigned SQL types, so arrow-odbc would read
4,000,000,000 as a negative INT), ``TINYINT(1)`` is a boolean, and psqlodbc reads booleans as
booleans (``BoolsAsChar=0`` unless the connection string says otherwise), streams through a cursor
(``UseDeclareFetch=1``: by default it reads the whole result first), float8 is a double (not a
float) and unconstrained NUMERIC is ``NUMERIC(38,10)`` (the driver's default would round to 6
decimals). MySQL/MariaDB: MariaDB Connector/ODBC before 3.1.17 (Debian 12 ships 3.1.15) stores a
whole result in the driver before the first row, and its streaming mode (``NO_CACHE=1`` with
``FORWARDONLY=1``, both added here, ignored by older drivers) came in 3.1.17. So a table with a
single-column primary key is read in keyed chunks (``WHERE key > ? ORDER BY key LIMIT`` the rows per
batch) inside one ``START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY``: the driver holds one
chunk, and every chunk sees the same snapshot (InnoDB; a non-transactional table gets no snapshot).
A table without such a key is read with one query, which such a driver holds whole (logged; the
``mysql:`` source streams it). ODBC has no time-zone-aware
timestamp type: TIMESTAMP WITH TIME ZONE arrives as the wall time of the session, which is set to the
accelerator's DuckDB TimeZone (UTC) for PostgreSQL and MySQL, so pushed-down comparisons agree.

Errors are classified by SQLSTATE class: ``08`` (connection), ``40`` (transaction rollback), ``HYT``
(timeout), ``53``/``57``/``58`` (server resources and state) and the MySQL client's "lost/cannot
connect" errors are transient; the rest (``28`` authorization, ``42`` syntax or access, ``22`` data,
``IM`` driver manager...) is terminal.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import pyarrow as pa

from airflow_provider_accel.exceptions import RefreshError
from airflow_provider_accel.sources._common import (
    duckdb_timezone,
    is_utc,
    quote_ident,
    resolve_params,
    split_identifier,
    tcp_reachable,
    transpile_where,
)
from airflow_provider_accel.sources.base import ScanRequest, SourceScan
from airflow_provider_accel.sources.database import Column, DatabaseSource, Dialect, code_in, iterate
from airflow_provider_accel.sources.mysql import MYSQL

if TYPE_CHECKING:
    import duckdb

    from airflow_provider_accel.spicepod.model import Dataset

log = logging.getLogger(__name__)

#: ``State: 08001, Native error: 101, Message: ...`` records of an arrow-odbc error.
_DIAGNOSTIC = re.compile(r"State: ([0-9A-Z]{5}), Native error: (-?\d+), Message: (.*)")


@dataclass(frozen=True)
class Diagnostic:
    """One ODBC diagnostic record: SQLSTATE, the driver's native error number, and its message."""

    state: str
    native: int
    message: str


def diagnostics(err: BaseException) -> list[Diagnostic]:
    """The diagnostic records in an arrow-odbc error's message (none for arrow-odbc's own errors)."""
    return [
        Diagnostic(m.group(1), int(m.group(2)), m.group(3).strip().rstrip(";"))
        for m in _DIAGNOSTIC.finditer(str(err))
    ]


def _sqlstate(err: BaseException) -> str | None:
    found = diagnostics(err)
    return found[0].state if found else None


#: Rejections of a pushed-down filter: syntax errors (ISO 42000, ODBC 2's 37000, PostgreSQL's own
#: codes), unknown function or operator, type mismatches and bad literals, feature not supported.
_PUSHDOWN_REJECTED: frozenset[str | int] = frozenset(
    {"42000", "37000", "42601", "42883", "42804", "42846", "42725", "22007", "22008", "22018", "0A000"}
)
#: SQLSTATE classes (and codes) retrying can cure: connection, transaction rollback (deadlock,
#: serialization), timeouts, and PostgreSQL's resources / operator intervention / system errors.
_TRANSIENT: frozenset[str | int] = frozenset({"08", "40", "53", "57", "58", "HYT00", "HYT01", "HY008"})
#: MySQL/MariaDB native errors that are transient under the general SQLSTATE HY000 (client errors
#: 2002 "can't connect", 2006 "gone away", 2013 "lost connection", and the server's own).
_MYSQL_NATIVE_TRANSIENT = frozenset(c for c in MYSQL.transient if isinstance(c, int))


def _odbc(title: str, sqlglot: str | None, quote: str = '"') -> Dialect:
    return Dialect(
        title=title,
        sqlglot=sqlglot,
        quote=quote,
        param_prefix="odbc_",
        error_code=_sqlstate,
        pushdown_rejected=_PUSHDOWN_REJECTED,
        transient=_TRANSIENT,
    )


#: Spice's ``sql_dialect`` values -> dialects (https://spiceai.org/docs/components/data-connectors/odbc).
DIALECTS: dict[str, Dialect] = {
    "postgresql": _odbc("PostgreSQL (ODBC)", "postgres"),
    "mysql": _odbc("MySQL (ODBC)", "mysql", "`"),
    "sqlite": _odbc("SQLite (ODBC)", "sqlite"),
    "databricks": _odbc("Databricks (ODBC)", "databricks", "`"),
    "athena": _odbc("Athena (ODBC)", "athena"),
}
#: Any other driver: ANSI SQL with double-quoted identifiers (Spice's DefaultDialect).
DEFAULT_DIALECT = _odbc("ODBC", "")

#: Words of the ``Driver=`` value (odbcinst.ini name or library file) -> ``sql_dialect``, in Spice's
#: order. MariaDB's driver ("MariaDB Unicode", libmaodbc.so) is ours: Spice reads it as unknown.
_DRIVER_WORDS = (
    ("mysql", "mysql"),
    ("libmyodbc", "mysql"),
    ("mariadb", "mysql"),
    ("maodbc", "mysql"),
    ("postgres", "postgresql"),
    ("psqlodbc", "postgresql"),
    ("sqlite", "sqlite"),
    ("libsparkodbc", "databricks"),
    ("databricks", "databricks"),
    ("athena", "athena"),
)

#: Defaults of the batch params: 64 MiB of transit buffer (Spice: 512 MB), 65,536 rows (Spice's).
DEFAULT_MAX_BYTES_PER_BATCH = 64 * 1024 * 1024
DEFAULT_MAX_ROWS_PER_BATCH = 65_536

#: Driver options added unless the connection string sets them. psqlodbc: BOOLEAN as a boolean (not
#: the characters '1'/'0'), and a server-side cursor read 10,000 rows at a time (without it the driver
#: loads the whole result into memory before returning its first row).
_DRIVER_OPTIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "postgresql": (("BoolsAsChar", "0"), ("UseDeclareFetch", "1"), ("Fetch", "10000")),
    # MariaDB Connector/ODBC 3.1.17+ (and MySQL's): stream forward-only results row by row instead of
    # storing them whole. 3.1.15 (Debian 12's) has neither key and ignores both: see _MYSQL_KEY_SQL.
    "mysql": (("NO_CACHE", "1"), ("FORWARDONLY", "1")),
}

#: Catalog lookups: a few rows, but LONGTEXT columns (information_schema's COLUMN_TYPE) for which
#: arrow-odbc's defaults (65,535 rows, 512 MB, two buffers) reserved over 1 GB before the first row.
_CATALOG_BATCH: dict[str, int] = {"batch_size": 64, "max_bytes_per_batch": 8 << 20, "max_text_size": 65_536}

#: Keys of a connection string shown in messages (never Uid/Pwd or driver-specific secrets).
_SAFE_KEYS = ("driver", "dsn", "server", "host", "servername", "port", "database", "db")

_MYSQL_CATALOG_SQL = (
    "SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS "
    "WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ?"
)
#: The single-column primary key of a MySQL/MariaDB table, by which a scan reads in keyed chunks.
#: MariaDB Connector/ODBC before 3.1.17 stores a whole result in the client before the first row
#: (mysql_stmt_store_result; result streaming, NO_CACHE, came in 3.1.17), so one SELECT of a big table
#: costs its size in memory; ``WHERE key > last ORDER BY key LIMIT n`` chunks bound that by n rows.
_MYSQL_KEY_SQL = (
    "SELECT k.COLUMN_NAME, c.DATA_TYPE FROM information_schema.KEY_COLUMN_USAGE k "
    "JOIN information_schema.COLUMNS c ON c.TABLE_SCHEMA = k.TABLE_SCHEMA "
    "AND c.TABLE_NAME = k.TABLE_NAME AND c.COLUMN_NAME = k.COLUMN_NAME "
    "WHERE k.CONSTRAINT_NAME = 'PRIMARY' AND k.TABLE_SCHEMA = COALESCE(?, DATABASE()) AND k.TABLE_NAME = ?"
)
#: Key types whose last value, bound back as text, compares as the server orders them.
_CHUNK_KEY_TYPES = frozenset(
    {"tinyint", "smallint", "mediumint", "int", "integer", "bigint", "decimal", "char", "varchar", "date",
     "datetime", "timestamp"}
)  # fmt: skip
#: PostgreSQL columns psqlodbc misreports: unconstrained NUMERIC (read as NUMERIC(28,6)) and float8
#: (reported as SQL_FLOAT with a decimal precision that arrow-odbc reads as single precision).
_PG_CATALOG_SQL = (
    "SELECT a.attname, CASE WHEN a.atttypid = 'float8'::regtype THEN 'float8' ELSE 'numeric' END "
    "FROM pg_attribute a WHERE a.attrelid = to_regclass(?) AND a.attnum > 0 AND NOT a.attisdropped "
    "AND (a.atttypid = 'float8'::regtype OR (a.atttypid = 'numeric'::regtype AND a.atttypmod < 0))"
)
#: MySQL unsigned integers -> the signed ODBC type that holds them (BIGINT UNSIGNED: DECIMAL(20,0)).
_UNSIGNED: dict[str, pa.DataType] = {
    "tinyint": pa.int16(),
    "smallint": pa.int32(),
    "mediumint": pa.int64(),
    "int": pa.int64(),
    "integer": pa.int64(),
    "bigint": pa.decimal128(20, 0),
}


def parse_connection_string(text: str) -> list[tuple[str, str]]:
    """``Key=Value;Key={va;lue}`` -> ``[(key, value)]`` (braces protect ``;``, ``}}`` is a ``}``)."""
    pairs: list[tuple[str, str]] = []
    i = 0
    while i < len(text):
        end = text.find("=", i)
        if end < 0:
            break
        key = text[i:end].strip().lstrip(";").strip()
        i = end + 1
        if text[i : i + 1] == "{":
            value, i = [], i + 1
            while i < len(text):
                if text[i] == "}":
                    if text[i + 1 : i + 2] == "}":
                        value.append("}")
                        i += 2
                        continue
                    i += 1
                    break
                value.append(text[i])
                i += 1
            pairs.append((key, "".join(value)))
            i = text.find(";", i)
            i = len(text) if i < 0 else i + 1
        else:
            stop = text.find(";", i)
            stop = len(text) if stop < 0 else stop
            pairs.append((key, text[i:stop].strip()))
            i = stop + 1
    return pairs


@dataclass(frozen=True)
class OdbcColumn(Column):
    """A column with the Arrow type arrow-odbc binds it as, when that differs from its own type."""

    transport: pa.DataType | None = None


@dataclass(frozen=True)
class OdbcTarget:
    connection_string: str  # with secrets: never logged
    safe: str  # the driver/server/port/database part, for messages
    dialect: Dialect
    sql_dialect: str | None  # the Spice name of the dialect, None for the default one
    host: str | None
    port: int | None
    parts: tuple[str, ...]  # the table reference of ``from:``


class OdbcSource(DatabaseSource):
    """A table read through an ODBC driver, with projection, filter and limit pushed down."""

    prefixes: ClassVar[tuple[str, ...]] = ("odbc:",)
    dialect = DEFAULT_DIALECT

    def __init__(self, dataset: Dataset) -> None:
        super().__init__(dataset)
        self._conn: Any = None
        self._target: OdbcTarget | None = None
        self.batch_options: dict[str, int | None] = {}
        #: The single-column primary key a MySQL/MariaDB scan reads in chunks by (see _MYSQL_KEY_SQL).
        self.chunk_key: str | None = None
        #: The filter (in the server's dialect) the current chunked scan sends, once the server took it.
        self._chunk_where: str | None = None
        self._chunking = False

    # -- params ------------------------------------------------------------------------------

    def target(self) -> OdbcTarget:
        if self._target is not None:
            return self._target
        params = resolve_params(self.dataset)
        connection_string = str(params.get("odbc_connection_string") or "")
        if not connection_string:
            self.terminal(
                "A required ODBC parameter is missing: odbc_connection_string "
                "(e.g. 'Driver={PostgreSQL Unicode};Server=host;Port=5432;Database=db;Uid=user')"
            )
        pairs = parse_connection_string(connection_string)
        keys = {k.lower(): v for k, v in pairs}
        sql_dialect = self._sql_dialect(params, keys.get("driver", ""))
        dialect = DIALECTS[sql_dialect] if sql_dialect else DEFAULT_DIALECT
        options = _DRIVER_OPTIONS.get(sql_dialect or "", ()) if "driver" in keys else ()
        connection_string = connection_string.rstrip(";") + "".join(
            f";{k}={v}" for k, v in options if k.lower() not in keys
        )
        self.batch_options = {
            "max_bytes_per_batch": self._int_param(
                params, "odbc_max_bytes_per_batch", DEFAULT_MAX_BYTES_PER_BATCH
            ),
            "batch_size": self._int_param(params, "odbc_max_num_rows_per_batch", DEFAULT_MAX_ROWS_PER_BATCH),
            "max_text_size": self._int_param(params, "odbc_max_text_size", None),
            "max_binary_size": self._int_param(params, "odbc_max_binary_size", None),
        }
        ref = self.dataset.from_.split(":", 1)[1]
        try:
            parts = split_identifier(ref)
        except ValueError as err:
            self.terminal(f"expected odbc:path.to.table, got {ref!r}", err)
        host = keys.get("server") or keys.get("host") or keys.get("servername")
        port_text = keys.get("port") or ""
        self._target = OdbcTarget(
            connection_string=connection_string,
            safe=";".join(f"{k}={v}" for k, v in pairs if k.lower() in _SAFE_KEYS),
            dialect=dialect,
            sql_dialect=sql_dialect,
            host=host if host and not host.startswith("/") else None,
            port=int(port_text) if port_text.isdigit() else None,
            parts=tuple(parts),
        )
        self.dialect = dialect
        self._label = f"{self.label_base} ({self._target.safe})"
        return self._target

    def _sql_dialect(self, params: dict[str, Any], driver: str) -> str | None:
        if params.get("sql_dialect"):
            value = str(params["sql_dialect"]).strip().lower()
            if value not in DIALECTS:
                self.terminal(
                    f"An ODBC parameter is configured incorrectly: sql_dialect ({value!r}). Only "
                    "'mysql', 'postgresql', 'sqlite', 'athena', or 'databricks' are supported"
                )
            return value
        lowered = driver.lower()
        for word, name in _DRIVER_WORDS:
            if word in lowered:
                return name
        log.info(
            "Dataset %s: ODBC driver %r not recognised; filters pushed down as ANSI SQL "
            "(set sql_dialect to choose a dialect)",
            self.dataset.name,
            driver,
        )
        return None

    def _int_param(self, params: dict[str, Any], name: str, default: int | None) -> int | None:
        value = params.get(name)
        if value in (None, ""):
            return default
        try:
            number = int(str(value).replace("_", ""))
        except ValueError:
            number = 0
        if number <= 0:
            self.terminal(f"param {name} must be a positive whole number, got {value!r}")
        return number

    # -- connection -------------------------------------------------------------------------

    def _connect(self) -> Any:
        target = self.target()
        try:
            import arrow_odbc
        except (ImportError, OSError) as err:  # the wheel loads libodbc.so: unixODBC missing
            self.terminal(
                f"arrow-odbc cannot load the ODBC driver manager ({err}): install unixODBC "
                "(Debian: apt-get install unixodbc) and the database's ODBC driver",
                err,
            )
        try:
            conn = arrow_odbc.connect(target.connection_string, login_timeout_sec=10)
        except arrow_odbc.Error as err:
            state = _sqlstate(err)
            if (
                state is not None
                and state.startswith("08")
                and target.host is not None
                and target.port is not None
                and tcp_reachable(target.host, target.port) is None
            ):
                # The server answered and refused us (psqlodbc reports a bad login as 08001, not 28000).
                self.terminal(f"the server refused the connection: {self.error_cause(err)}", err)
            raise self.classify(err) from err
        try:
            if target.sql_dialect == "postgresql":
                conn.execute("SET TIME ZONE 'UTC'")
            elif target.sql_dialect == "mysql":
                conn.execute("SET time_zone = '+00:00'")
        except arrow_odbc.Error as err:
            raise self.classify(err) from err
        return conn

    def is_transient(self, err: BaseException) -> bool:
        found = diagnostics(err)
        if not found:
            # arrow-odbc's own errors (a value larger than its buffer, an unsupported type): terminal.
            return isinstance(err, OSError)
        first = found[0]
        if first.state == "HY000" and self.dialect.sqlglot == "mysql":
            return first.native in _MYSQL_NATIVE_TRANSIENT
        return code_in(first.state, self.dialect.transient)

    def error_cause(self, err: BaseException) -> str:
        found = diagnostics(err)
        if found:
            return f"{found[0].message} (SQLSTATE {found[0].state})"
        text = str(err).strip()
        if "too large to be written into the allocated buffer" in text:
            return (
                f"{text.splitlines()[0]}. Raise odbc_max_text_size (text) or odbc_max_binary_size "
                "(binary) to the size in bytes of the largest value"
            )
        if "did not specify a sensible upper bound" in text:
            return (
                f"{' '.join(text.splitlines()[:2])} Set odbc_max_text_size (text) or odbc_max_binary_size "
                "(binary) to the size in bytes of the largest value"
            )
        return " ".join(text.split())

    # -- catalog -----------------------------------------------------------------------------

    def relation(self) -> str:
        return ".".join(quote_ident(p, self.dialect.quote) for p in self.target().parts)

    def load_columns(self) -> list[Column]:
        target = self.target()
        conn = self._connect()
        try:
            reader = conn.read_arrow_batches(
                f"SELECT * FROM {self.relation()} WHERE 1 = 0", **self.batch_options
            )
            schema: pa.Schema = reader.schema
            for _ in reader:  # no rows; a streaming driver needs the result consumed before the next query
                pass
            overrides: dict[str, tuple[pa.DataType, pa.DataType]] = {}
            casts: set[str] = set()
            if target.sql_dialect == "mysql":
                overrides = self._mysql_types(conn, target)
                self.chunk_key = self._mysql_chunk_key(conn, target)
            elif target.sql_dialect == "postgresql":
                casts, overrides = self._pg_types(conn)
        except RefreshError:
            raise
        except Exception as err:
            raise self.classify(err) from err
        finally:
            _release(conn)
        columns: list[Column] = []
        for field in schema:
            quoted = self.quote(field.name)
            if field.name in casts:
                arrow: pa.DataType = pa.decimal128(38, 10)
                columns.append(OdbcColumn(field.name, arrow, f"CAST({quoted} AS NUMERIC(38,10)) AS {quoted}"))
            elif field.name in overrides:
                arrow, transport = overrides[field.name]
                columns.append(OdbcColumn(field.name, arrow, quoted, transport=transport))
            else:
                columns.append(OdbcColumn(field.name, field.type, quoted))
        return columns

    def _mysql_types(self, conn: Any, target: OdbcTarget) -> dict[str, tuple[pa.DataType, pa.DataType]]:
        """Unsigned integers and TINYINT(1) from MySQL's catalog: ``name -> (type, type read as)``."""
        database = target.parts[-2] if len(target.parts) >= 2 else None
        reader = conn.read_arrow_batches(
            _MYSQL_CATALOG_SQL, parameters=[database, target.parts[-1]], **_CATALOG_BATCH
        )
        out: dict[str, tuple[pa.DataType, pa.DataType]] = {}
        for batch in reader:
            for name, column_type in zip(
                batch.column(0).to_pylist(), batch.column(1).to_pylist(), strict=True
            ):
                kind = str(column_type).lower()
                base = kind.split("(")[0].split()[0]
                if "unsigned" in kind and base in _UNSIGNED:
                    out[name] = (_UNSIGNED[base], _UNSIGNED[base])
                elif kind.startswith("tinyint(1)"):
                    out[name] = (pa.bool_(), pa.int8())
        return out

    def _mysql_chunk_key(self, conn: Any, target: OdbcTarget) -> str | None:
        """The table's primary key when it is one column of an orderable type, else ``None``."""
        database = target.parts[-2] if len(target.parts) >= 2 else None
        reader = conn.read_arrow_batches(
            _MYSQL_KEY_SQL, parameters=[database, target.parts[-1]], **_CATALOG_BATCH
        )
        keys = [row for batch in reader for row in zip(*(c.to_pylist() for c in batch.columns), strict=True)]
        if len(keys) == 1 and str(keys[0][1]).lower() in _CHUNK_KEY_TYPES:
            return str(keys[0][0])
        log.info(
            "Dataset %s: %s has no single-column primary key to read it in chunks by; it is read with "
            "one query, which drivers that store a whole result (MariaDB Connector/ODBC < 3.1.17) hold "
            "in memory at once",
            self.dataset.name,
            self.relation(),
        )
        return None

    def _pg_types(self, conn: Any) -> tuple[set[str], dict[str, tuple[pa.DataType, pa.DataType]]]:
        """Unconstrained NUMERIC columns (read cast to NUMERIC(38,10)) and float8 ones (read as double)."""
        reader = conn.read_arrow_batches(_PG_CATALOG_SQL, parameters=[self.relation()], **_CATALOG_BATCH)
        casts: set[str] = set()
        overrides: dict[str, tuple[pa.DataType, pa.DataType]] = {}
        for batch in reader:
            for name, kind in zip(batch.column(0).to_pylist(), batch.column(1).to_pylist(), strict=True):
                if kind == "float8":
                    overrides[name] = (pa.float64(), pa.float64())
                else:
                    casts.add(name)
        return casts, overrides

    # -- scan --------------------------------------------------------------------------------

    def pushable_where(self, where: str, tz: str) -> str | None:
        """The filter in the source's dialect; ``None`` when it cannot be written there."""
        if self.dialect.sqlglot is None:
            return None
        if not is_utc(tz) and self.target().sql_dialect in ("postgresql", "mysql"):
            log.info(
                "Dataset %s: DuckDB TimeZone is %s, the ODBC session's is UTC; filter not pushed down",
                self.dataset.name,
                tz,
            )
            return None
        return transpile_where(where, self.dialect.sqlglot, dataset=self.dataset.name)

    def scan(self, request: ScanRequest, con: duckdb.DuckDBPyConnection) -> SourceScan:
        chosen = self.wanted_columns(request)
        schema = pa.schema([pa.field(c.name, c.arrow) for c in chosen])
        transport = pa.schema([pa.field(c.name, getattr(c, "transport", None) or c.arrow) for c in chosen])
        where_sql = self.pushable_where(request.where, duckdb_timezone(con)) if request.where else None

        key = self.chunk_key
        extra_key = key is not None and key not in schema.names
        if key is not None and extra_key:
            by_name = {c.name: c for c in self.columns()}
            key_column = by_name[key]
            transport = transport.append(
                pa.field(key, getattr(key_column, "transport", None) or key_column.arrow)
            )

        self.close()
        conn = self._connect()
        self._conn = conn

        def run(query: str, parameters: list[str | None] | None = None) -> Any:
            return conn.read_arrow_batches(
                query, schema=transport, parameters=parameters, **self.batch_options
            )

        self._chunking = key is not None
        try:
            if key is not None:
                # One snapshot for every chunk, so the table reads as of one moment (InnoDB).
                conn.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            driver_reader = self.execute_pushed(run, request, where_sql)
        except RefreshError:
            self.close()
            raise
        except Exception as err:
            self.close()
            raise self.classify(err) from err
        finally:
            self._chunking = False
        if key is None:
            return SourceScan(reader=self.reader(schema, iterate(driver_reader), on_close=self.close))
        chunks = self._keyed_chunks(run, driver_reader, request, key, extra_key)
        return SourceScan(reader=self.reader(schema, chunks, on_close=self.close))

    # -- keyed chunks (MySQL/MariaDB) --------------------------------------------------------------

    def _chunk_rows(self) -> int:
        return self.batch_options.get("batch_size") or DEFAULT_MAX_ROWS_PER_BATCH

    def build_query(self, request: ScanRequest, where_sql: str | None) -> str:
        if not self._chunking:
            return super().build_query(request, where_sql)
        self._chunk_where = where_sql  # execute_pushed's last call is the query the server took
        return self._chunk_query(
            request, where_sql, self._chunk_limit(request, where_sql, 0), after_key=False
        )

    def _chunk_query(self, request: ScanRequest, where_sql: str | None, limit: int, after_key: bool) -> str:
        """``SELECT ... [WHERE filter AND] key > ? ORDER BY key LIMIT chunk``: one chunk of the scan."""
        assert self.chunk_key is not None
        names = [c.select for c in self.wanted_columns(request)]
        key = self.quote(self.chunk_key)
        if self.chunk_key not in [c.name for c in self.wanted_columns(request)]:
            names.append(key)
        conditions = [f"({where_sql})"] if where_sql is not None else []
        if after_key:
            conditions.append(f"{key} > ?")
        sql = f"SELECT {', '.join(names)} FROM {self.relation()}"
        if conditions:
            sql += " WHERE " + " AND ".join(conditions)
        return f"{sql} ORDER BY {key} LIMIT {limit}"

    def _chunk_limit(self, request: ScanRequest, where_sql: str | None, read: int) -> int:
        """Rows the next chunk asks for: a chunk, or what is left of a LIMIT pushed with its filter."""
        pushed_limit = request.limit is not None and (request.where is None or where_sql is not None)
        if pushed_limit and request.limit is not None:
            return max(0, min(self._chunk_rows(), int(request.limit) - read))
        return self._chunk_rows()

    def _keyed_chunks(
        self, run: Any, first: Any, request: ScanRequest, key: str, extra_key: bool
    ) -> Iterator[pa.RecordBatch]:
        """The batches of ``first`` (chunk one), then of each next chunk, until one comes back short.

        A chunk shorter than it asked for is the end of the table: a session killed between chunks
        fails the next query, so the stream can never end early looking complete.
        """
        where_sql = self._chunk_where
        reader, read, last = first, 0, None
        while True:
            asked = self._chunk_limit(request, where_sql, read)
            got = 0
            for batch in reader:
                if batch.num_rows == 0:
                    continue
                got += batch.num_rows
                last = batch.column(key)[batch.num_rows - 1].as_py()
                yield batch.drop_columns([key]) if extra_key else batch
            read += got
            following = self._chunk_limit(request, where_sql, read)
            if got < asked or following == 0:
                return
            query = self._chunk_query(request, where_sql, following, after_key=True)
            log.debug("Dataset %s: next chunk after %s = %r", self.dataset.name, key, last)
            reader = run(query, [_key_text(last)])

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            _release(conn)


def _key_text(value: Any) -> str | None:
    """A key value bound back as text the server parses as the column's type (``2024-01-02 03:04:05``)."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    return str(value)


def _release(conn: Any) -> None:
    """End the connection's transaction so arrow-odbc can disconnect when its last reference goes.

    psqlodbc's cursor mode opens a transaction even in autocommit; a connection freed inside one
    fails to disconnect (SQLSTATE 25000) and stays open on the server, holding its locks.
    """
    try:
        conn.rollback()
    except Exception as err:  # a broken connection has no transaction left to end
        log.debug("ODBC rollback before disconnect: %s", err)
