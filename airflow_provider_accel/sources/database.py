"""The database sources' shared shape: one :class:`DatabaseSource` plus a :class:`Dialect` per server.

A dialect is data: the sqlglot dialect filters are transpiled to, the Airflow connection fields that
map onto the source's Spice params, the error codes that mean "the server did not accept the
pushed-down filter" and those that mean "retry later". What stays in a server's module is its
driver: how to connect, how to read the catalog into :class:`Column` records, and how to stream.

Adding a server (MSSQL, ODBC...) is one :class:`Dialect` record and a driver module.
"""

from __future__ import annotations

import decimal
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import pyarrow as pa

from airflow_provider_accel.sources._common import StreamingSource, quote_ident
from airflow_provider_accel.sources.base import ScanRequest, SourceCapabilities

if TYPE_CHECKING:
    import duckdb

    from airflow_provider_accel.spicepod.model import Dataset

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: Value errors a converter raises when a stored value does not fit its column's Arrow type.
CONVERSION_ERRORS = (pa.ArrowException, ValueError, TypeError, OverflowError, decimal.InvalidOperation)


def _no_code(err: BaseException) -> str | int | None:
    return None


@dataclass(frozen=True)
class Dialect:
    """What differs between database servers, as data."""

    #: How the server is named in messages ("PostgreSQL").
    title: str
    #: The sqlglot dialect pushed-down filters are written in (``None``: no pushdown).
    sqlglot: str | None
    #: Identifier quote character.
    quote: str = '"'
    #: The param naming an Airflow connection to read, e.g. ``postgres_conn_id``.
    conn_id_param: str | None = None
    #: Prefix of the source's own params; explicit ones override the Airflow connection's fields.
    param_prefix: str = ""
    #: Airflow Connection attribute (or ``extra.<key>``) -> Spice param.
    connection_fields: tuple[tuple[str, str], ...] = ()
    #: The driver error's code (SQLSTATE, errno, primary result code), ``None`` when it has none.
    error_code: Callable[[BaseException], str | int | None] = _no_code
    #: Codes that mean the server rejected the transpiled filter: read again without it.
    pushdown_rejected: frozenset[str | int] = frozenset()
    #: Codes (or two-character SQLSTATE classes) that retrying can cure; any other code is terminal.
    transient: frozenset[str | int] = frozenset()
    #: Airflow ``conn_type`` values this dialect reads through the dedicated source.
    conn_types: tuple[str, ...] = field(default=())


def code_in(code: str | int, codes: frozenset[str | int]) -> bool:
    """Whether ``code`` is listed, directly or (a SQLSTATE) by its two-character class."""
    return code in codes or (isinstance(code, str) and code[:2] in codes)


def pep249_transient(err: BaseException) -> bool:
    """PEP 249's hierarchy: Operational/Interface errors concern the connection or the server's state."""
    names = {cls.__name__ for cls in type(err).__mro__}
    return bool(names & {"OperationalError", "InterfaceError"}) or isinstance(err, OSError)


def params_from_connection(conn: Any, fields: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """Spice params from an Airflow connection's fields (``extra.<key>`` reads its extra)."""
    extra = conn.extra_dejson or {}
    params: dict[str, Any] = {}
    for attribute, param in fields:
        if attribute.startswith("extra."):
            value = extra.get(attribute[len("extra.") :])
        else:
            value = getattr(conn, attribute, None)
        if value not in (None, ""):
            params[param] = value
    return params


@dataclass(frozen=True)
class Column:
    """One source column: its Arrow type, its SELECT expression, and how driver values become Arrow."""

    name: str
    arrow: pa.DataType
    #: The expression in the SELECT list (a cast when the driver cannot read the type natively).
    select: str
    #: Driver values of one batch -> Arrow array; ``None`` when the driver hands Arrow already.
    convert: Callable[[list[Any]], pa.Array] | None = None
    #: The type as declared at the source, for messages.
    declared: str | None = None
    #: A date/time column (filters on it may compare differently at the source).
    temporal: bool = False


def plain(arrow: pa.DataType) -> Callable[[list[Any]], pa.Array]:
    """The converter for values the driver already gives in Arrow's Python form."""
    return lambda values: pa.array(values, type=arrow)


class DatabaseSource(StreamingSource):
    """A table of a database server: connection params, catalog, pushdown and error classes."""

    dialect: Dialect
    capabilities = SourceCapabilities(filter_pushdown=True, projection_pushdown=True)

    def __init__(self, dataset: Dataset) -> None:
        super().__init__(dataset)
        #: The SQL of the last scan (no secrets in it), for logs and tests.
        self.last_query: str | None = None

    # -- connection params ----------------------------------------------------------------------

    def connection_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """``params`` on top of the fields of the Airflow connection they name (if any)."""
        conn_id = params.get(self.dialect.conn_id_param) if self.dialect.conn_id_param else None
        if not conn_id:
            return params
        from_conn = params_from_connection(
            self.airflow_connection(str(conn_id)), self.dialect.connection_fields
        )
        own = {k: v for k, v in params.items() if k.startswith(self.dialect.param_prefix)}
        return {**params, **from_conn, **own}

    # -- errors ---------------------------------------------------------------------------------

    def is_transient(self, err: BaseException) -> bool:
        code = self.dialect.error_code(err)
        if code is not None:
            return code_in(code, self.dialect.transient)
        return pep249_transient(err)

    def pushdown_rejected(self, err: BaseException) -> bool:
        code = self.dialect.error_code(err)
        return code is not None and code_in(code, self.dialect.pushdown_rejected)

    # -- catalog --------------------------------------------------------------------------------

    def columns(self) -> list[Column]:
        return self.cached_columns(self.load_columns)

    def load_columns(self) -> list[Column]:
        """Read the table's columns from the server's catalog (once per source, see :meth:`columns`)."""
        raise NotImplementedError

    def schema(self, con: duckdb.DuckDBPyConnection | None) -> pa.Schema:
        return pa.schema([pa.field(c.name, c.arrow) for c in self.columns()])

    def wanted_columns(self, request: ScanRequest) -> list[Column]:
        """The requested columns in request order, each checked to exist."""
        by_name = {c.name: c for c in self.columns()}
        return [by_name[n] for n in self.check_columns(self.schema(None), request.columns)]

    # -- queries --------------------------------------------------------------------------------

    def quote(self, name: str) -> str:
        return quote_ident(name, self.dialect.quote)

    def relation(self) -> str:
        """The quoted table reference the SELECT reads."""
        raise NotImplementedError

    def build_query(self, request: ScanRequest, where_sql: str | None) -> str:
        select = ", ".join(c.select for c in self.wanted_columns(request))
        return self.select_sql(select, self.relation(), request, where_sql)

    def execute_pushed(self, run: Callable[[str], _T], request: ScanRequest, where_sql: str | None) -> _T:
        """``run(query)`` with the filter pushed; when the server rejects that filter, once without it.

        The accelerator re-applies the filter, so reading unfiltered costs volume, never correctness.
        """
        query = self.build_query(request, where_sql)
        try:
            result = run(query)
        except Exception as err:
            if where_sql is None or not self.pushdown_rejected(err):
                raise
            log.warning(
                "Dataset %s: %s rejected the pushed-down filter (%s); reading unfiltered",
                self.dataset.name,
                self.dialect.title,
                self.error_cause(err),
            )
            query = self.build_query(request, None)
            result = run(query)
        self.last_query = query
        log.info("Dataset %s: reading %s with: %s", self.dataset.name, self.description, query)
        return result

    # -- values ---------------------------------------------------------------------------------

    def converters(self, columns: list[Column]) -> list[Callable[[list[Any]], pa.Array]]:
        """One converter per column; a value that does not fit is a terminal error naming the column."""
        return [self.checked(c) for c in columns]

    def checked(self, column: Column) -> Callable[[list[Any]], pa.Array]:
        convert = column.convert or plain(column.arrow)
        declared = f" (declared {column.declared})" if column.declared else ""

        def run(values: list[Any]) -> pa.Array:
            try:
                return convert(values)
            except CONVERSION_ERRORS as err:
                self.terminal(
                    f"column {column.name!r}{declared}: a value does not fit {column.arrow}: {err}", err
                )

        return run


def first_line(err: BaseException) -> str:
    """The first line of a driver message (libpq and others append hints and context lines)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def close_adbc(dataset_name: str, title: str, cursor: Any, conn: Any) -> None:
    """Close an ADBC cursor, then its connection (ADBC refuses to close one with an open statement)."""
    for handle in (cursor, conn):
        if handle is None:
            continue
        try:
            handle.close()
        except Exception as err:  # a dropped connection can't be closed cleanly; nothing to release
            log.debug("Dataset %s: closing the %s connection: %s", dataset_name, title, err)


def iterate(reader: Any) -> Iterator[pa.RecordBatch]:
    """The batches of a driver's Arrow reader, as a generator (so closing it releases the driver)."""
    yield from reader
