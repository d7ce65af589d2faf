"""``sqlite:table`` with ``params.sqlite_file``: a table of a SQLite database, streamed in Arrow batches.

SQLite stores values with dynamic types; the Arrow type of each column comes from its declared type
(``PRAGMA table_info``), by name first (``BOOLEAN``, ``DATE``, ``DATETIME``/``TIMESTAMP``,
``DECIMAL(p,s)``, ``JSON``, ``UUID``...) and by SQLite's affinity rules otherwise. A stored value that
does not fit its column's declared type is a terminal error naming the column. A column without a
declared type has no meaning to carry over: it is an unsupported type.

The file is opened read-only (``mode=ro``). Pushdown: projection, limit and the filter (transpiled to
SQLite) when the filter uses no date/time column or date/time value: SQLite compares those as
text or numbers, which could drop rows DuckDB would keep.
"""

from __future__ import annotations

import datetime as dt
import decimal
import logging
import re
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

import pyarrow as pa

from airflow_provider_accel.sources._common import (
    DEFAULT_BATCH_ROWS,
    batches_from_rows,
    quote_ident,
    resolve_params,
    transpile_where,
    where_references,
)
from airflow_provider_accel.sources.base import ScanRequest, SourceScan
from airflow_provider_accel.sources.database import Column, DatabaseSource, Dialect, plain

if TYPE_CHECKING:
    import duckdb

    from airflow_provider_accel.spicepod.model import Dataset

log = logging.getLogger(__name__)


def primary_result_code(err: BaseException) -> int | None:
    """SQLite's primary result code of a sqlite3 error (extended codes keep it in the low byte)."""
    code = getattr(err, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None


SQLITE = Dialect(
    title="SQLite",
    sqlglot="sqlite",
    error_code=primary_result_code,
    # SQLITE_ERROR: a generic SQL error (unknown function, syntax) in the transpiled filter.
    pushdown_rejected=frozenset({1}),
    transient=frozenset({5, 6, 10}),  # SQLITE_BUSY, SQLITE_LOCKED, SQLITE_IOERR
)
_DECIMAL = re.compile(r"^(?:DECIMAL|NUMERIC)\s*\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)$")
_TEMPORAL_KINDS = {
    "date",
    "datetime",
    "timestamp",
    "timestamptz",
    "interval",
    "time",
    "now",
    "currenttimestamp",
    "currentdate",
    "strftime",
    "timestampnanos",
}


def _parse_timestamp(value: Any, tz: bool) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        # SQLite's "unix time" storage class for date/time columns.
        return (
            dt.datetime.fromtimestamp(value, tz=dt.UTC)
            if tz
            else dt.datetime.fromtimestamp(value, tz=dt.UTC).replace(tzinfo=None)
        )
    parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if tz:
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    if parsed.tzinfo:
        raise ValueError(f"{value!r} has a UTC offset but the column is declared without a time zone")
    return parsed


def _date(values: list[Any]) -> pa.Array:
    return pa.array(
        [None if v is None else dt.date.fromisoformat(str(v)[:10]) for v in values], type=pa.date32()
    )


def _timestamp(tz: bool) -> Callable[[list[Any]], pa.Array]:
    arrow = pa.timestamp("us", tz="UTC") if tz else pa.timestamp("us")
    return lambda values: pa.array([_parse_timestamp(v, tz) for v in values], type=arrow)


def _time(values: list[Any]) -> pa.Array:
    return pa.array(
        [None if v is None else dt.time.fromisoformat(str(v)) for v in values], type=pa.time64("us")
    )


def _decimal(arrow: pa.Decimal128Type) -> Callable[[list[Any]], pa.Array]:
    quantum = decimal.Decimal(1).scaleb(-arrow.scale)

    def convert(values: list[Any]) -> pa.Array:
        # REAL-stored values go through their shortest repr, so 0.1 stays 0.1.
        return pa.array(
            [
                None if v is None else decimal.Decimal(str(v)).quantize(quantum, decimal.ROUND_HALF_EVEN)
                for v in values
            ],
            type=arrow,
        )

    return convert


def _bool(values: list[Any]) -> pa.Array:
    out = []
    for v in values:
        if v is None or isinstance(v, int):
            out.append(None if v is None else bool(v))
        elif isinstance(v, str) and v.lower() in ("true", "false", "t", "f", "1", "0"):
            out.append(v.lower() in ("true", "t", "1"))
        else:
            raise ValueError(f"{v!r} is not a boolean")
    return pa.array(out, type=pa.bool_())


def _uuid(values: list[Any]) -> pa.Array:
    storage = pa.array(
        [
            None if v is None else (v if isinstance(v, bytes) and len(v) == 16 else uuid.UUID(str(v)).bytes)
            for v in values
        ],
        type=pa.binary(16),
    )
    return pa.ExtensionArray.from_storage(pa.uuid(), storage)


def _json(values: list[Any]) -> pa.Array:
    return pa.ExtensionArray.from_storage(pa.json_(), pa.array(values, type=pa.string()))


def _float(values: list[Any]) -> pa.Array:
    return pa.array([None if v is None else float(v) for v in values], type=pa.float64())


def _column(
    name: str,
    declared: str,
    arrow: pa.DataType,
    convert: Callable[[list[Any]], pa.Array],
    temporal: bool = False,
) -> Column:
    return Column(name, arrow, quote_ident(name), convert, declared or None, temporal)


def column_for(name: str, declared: str) -> Column | None:
    """The Arrow mapping of a declared SQLite type; ``None`` when there is no meaningful one."""
    decl = declared.strip().upper()
    base = decl.split("(")[0].strip()
    if match := _DECIMAL.match(decl):
        precision, scale = int(match.group(1)), int(match.group(2) or 0)
        if precision <= 38 and scale <= precision:
            arrow = pa.decimal128(precision, scale)
            return _column(name, declared, arrow, _decimal(arrow))
        return None
    named: dict[str, tuple[pa.DataType, Callable[[list[Any]], pa.Array], bool]] = {
        "BOOLEAN": (pa.bool_(), _bool, False),
        "BOOL": (pa.bool_(), _bool, False),
        "DATE": (pa.date32(), _date, True),
        "DATETIME": (pa.timestamp("us"), _timestamp(False), True),
        "TIMESTAMP": (pa.timestamp("us"), _timestamp(False), True),
        "TIMESTAMPTZ": (pa.timestamp("us", tz="UTC"), _timestamp(True), True),
        "TIMESTAMP WITH TIME ZONE": (pa.timestamp("us", tz="UTC"), _timestamp(True), True),
        "TIME": (pa.time64("us"), _time, True),
        "JSON": (pa.json_(), _json, False),
        "JSONB": (pa.json_(), _json, False),
        "UUID": (pa.uuid(), _uuid, False),
    }
    if base in named:
        arrow, conv, temporal = named[base]
        return _column(name, declared, arrow, conv, temporal)
    # SQLite's affinity rules (https://www.sqlite.org/datatype3.html#determination_of_column_affinity).
    if "INT" in decl:
        return _column(name, declared, pa.int64(), plain(pa.int64()))
    if any(k in decl for k in ("CHAR", "CLOB", "TEXT")):
        return _column(name, declared, pa.string(), plain(pa.string()))
    if "BLOB" in decl:
        return _column(name, declared, pa.binary(), plain(pa.binary()))
    if any(k in decl for k in ("REAL", "FLOA", "DOUB")):
        return _column(name, declared, pa.float64(), _float)
    if decl in ("NUMERIC", "DECIMAL"):
        arrow = pa.decimal128(38, 10)
        return _column(name, declared, arrow, _decimal(arrow))
    return None


class SqliteSource(DatabaseSource):
    """A SQLite table opened read-only, streamed in typed batches with pushdown."""

    prefixes: ClassVar[tuple[str, ...]] = ("sqlite:",)
    dialect = SQLITE

    def __init__(self, dataset: Dataset) -> None:
        super().__init__(dataset)
        self._conn: sqlite3.Connection | None = None
        self.batch_rows = DEFAULT_BATCH_ROWS

    @property
    def table(self) -> str:
        return self.dataset.from_.split(":", 1)[1].strip('"')

    def relation(self) -> str:
        return quote_ident(self.table)

    def _path(self) -> Path:
        params = resolve_params(self.dataset)
        path = params.get("sqlite_file")
        if not path:
            self.terminal("params.sqlite_file is required (the SQLite database file to read)")
        if params.get("sqlite_batch_rows"):
            self.batch_rows = int(params["sqlite_batch_rows"])
        return Path(str(path)).expanduser()

    def _connect(self) -> sqlite3.Connection:
        path = self._path()
        if not path.is_file():
            self.terminal(f"SQLite file {str(path)!r} does not exist")
        try:
            conn = sqlite3.connect(
                f"file:{quote(str(path.resolve()))}?mode=ro", uri=True, check_same_thread=False
            )
        except sqlite3.Error as err:
            raise self.classify(err) from err
        conn.execute("PRAGMA busy_timeout = 5000")
        return conn

    def load_columns(self) -> list[Column]:
        rows = self.catalog_query(
            self._connect(),
            lambda conn: conn.execute(f"PRAGMA table_info({quote_ident(self.table)})").fetchall(),
            errors=sqlite3.Error,
        )
        if not rows:
            self.terminal(f"table {self.table!r} not found")
        columns = []
        for _cid, name, declared, *_ in rows:
            column = column_for(name, declared or "")
            if column is None:
                self.terminal(
                    f"column {name!r} has declared type {declared or '(none)'!r}, which is not supported"
                )
            columns.append(column)
        return columns

    def pushable_where(self, where: str) -> str | None:
        columns, kinds = where_references(where)
        temporal = {c.name for c in self.columns() if c.temporal}
        if columns & temporal or "*" in columns or kinds & _TEMPORAL_KINDS:
            log.info("Dataset %s: filter on date/time values not pushed down to SQLite", self.dataset.name)
            return None
        return transpile_where(where, "sqlite", dataset=self.dataset.name)

    def scan(self, request: ScanRequest, con: duckdb.DuckDBPyConnection) -> SourceScan:
        chosen = self.wanted_columns(request)
        schema = pa.schema([pa.field(c.name, c.arrow) for c in chosen])
        where_sql = self.pushable_where(request.where) if request.where else None

        self.close()
        conn = self._connect()
        self._conn = conn
        try:
            cursor = self.execute_pushed(conn.execute, request, where_sql)
        except sqlite3.Error as err:
            self.close()
            raise self.classify(err) from err
        converters = self.converters(chosen)

        def batches() -> Iterator[pa.RecordBatch]:
            yield from batches_from_rows(
                iter(()), schema, converters, self.batch_rows, fetch=cursor.fetchmany
            )

        return SourceScan(reader=self.reader(schema, batches(), on_close=self.close))

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
