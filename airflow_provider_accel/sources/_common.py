"""Helpers shared by the streaming sources (databases, object storage, HTTP, Airflow connections).

Private to :mod:`airflow_provider_accel.sources`: parameter resolution, identifier parsing, the
DuckDB -> server dialect transpiler used for filter pushdown, Arrow batch conforming and the
reader wrapper that turns driver failures into classified refresh errors.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, NoReturn, Protocol, TypeVar

import pyarrow as pa

from airflow_provider_accel.exceptions import RefreshError, TerminalRefreshError, TransientRefreshError
from airflow_provider_accel.sources.base import ScanRequest, Source

if TYPE_CHECKING:
    import duckdb

    from airflow_provider_accel.spicepod.model import Dataset

log = logging.getLogger(__name__)

#: Rows per Arrow batch for sources that build batches in Python (MySQL, SQLite, generic DB-API).
#: Big enough to amortise per-batch overhead, small enough to keep peak memory in the tens of MB.
DEFAULT_BATCH_ROWS = 10_000


class _Closeable(Protocol):
    def close(self) -> None: ...


_Column = TypeVar("_Column")
_Conn = TypeVar("_Conn", bound=_Closeable)
_Result = TypeVar("_Result")


def resolve_params(dataset: Dataset) -> dict[str, Any]:
    """The dataset's params with ``${secrets:..}``/``${env:..}`` placeholders resolved (never logged)."""
    from airflow_provider_accel.spicepod.secrets import resolve_params as resolve

    return resolve(dataset.params, dataset.name)


def split_identifier(text: str) -> list[str]:
    """Split ``a.b."c.d"`` into ``["a", "b", "c.d"]``; double quotes protect dots (``""`` is a quote)."""
    parts: list[str] = []
    current: list[str] = []
    i, quoted = 0, False
    while i < len(text):
        ch = text[i]
        if ch == '"':
            if quoted and i + 1 < len(text) and text[i + 1] == '"':
                current.append('"')
                i += 1
            else:
                quoted = not quoted
        elif ch == "." and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    if quoted or any(not p for p in parts):
        raise ValueError(f"malformed identifier {text!r}")
    return parts


def quote_ident(name: str, quote: str = '"') -> str:
    """Quote an identifier for SQL (ANSI double quotes; MySQL passes a backtick)."""
    return quote + name.replace(quote, quote * 2) + quote


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def transpile_where(where: str, dialect: str, *, dataset: str) -> str | None:
    """``where`` (DuckDB dialect) rewritten for ``dialect``; ``None`` when it cannot be (no pushdown).

    The accelerator re-applies the filter, so ``None`` costs transfer volume, never correctness.
    """
    try:
        import sqlglot
        from sqlglot.errors import ErrorLevel
    except ImportError:  # pragma: no cover - sqlglot ships with the source extras
        log.warning("Dataset %s: sqlglot is not installed; the filter is not pushed down", dataset)
        return None
    try:
        out = sqlglot.transpile(where, read="duckdb", write=dialect, unsupported_level=ErrorLevel.RAISE)
    except Exception as err:  # sqlglot raises several unrelated types; any of them means "no pushdown"
        log.info("Dataset %s: filter not pushed down to %s (cannot transpile: %s)", dataset, dialect, err)
        return None
    if len(out) != 1:
        return None
    return out[0]


def where_references(where: str) -> tuple[set[str], set[str]]:
    """Column names and lower-cased function/type keywords an expression uses (for pushdown safety rules)."""
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(where, read="duckdb")
    except Exception:  # unparseable here: report everything as used, so callers don't push it down
        return {"*"}, {"*"}
    columns = {c.name for c in tree.find_all(exp.Column)}
    kinds: set[str] = set()
    for node in tree.walk():
        if isinstance(node, exp.Func):
            kinds.add(node.sql_name().lower())
        if isinstance(node, exp.DataType):
            kinds.add(node.this.name.lower() if hasattr(node.this, "name") else str(node.this).lower())
        if isinstance(node, exp.Interval):
            kinds.add("interval")
    return columns, kinds


def tcp_reachable(host: str, port: int, timeout: float = 5.0) -> OSError | None:
    """``None`` when a TCP connection to ``host:port`` opens, else the socket error.

    Used to tell "server unreachable" (transient) from "server refused us" (terminal) when a driver
    reports both with the same exception type.
    """
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as err:
        return err


def duckdb_timezone(con: duckdb.DuckDBPyConnection) -> str:
    """The accelerator connection's TimeZone, so a pushed-down filter compares timestamps as DuckDB will."""
    try:
        rows = con.execute("SELECT current_setting('TimeZone')").fetchall()
    except Exception:  # no ICU: DuckDB then treats timestamps as UTC
        return "UTC"
    return str(rows[0][0]) if rows and rows[0][0] else "UTC"


def is_utc(tz: str) -> bool:
    return tz.upper() in {"UTC", "GMT", "ETC/UTC", "ETC/GMT", "Z", "UCT", "ETC/UCT", "ZULU", "UNIVERSAL"}


def conform_batch(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """Cast a driver batch to the declared schema (extension storage unwrapped, strings to decimals...)."""
    if batch.schema.equals(schema, check_metadata=False):
        return batch
    arrays = []
    for i, field in enumerate(schema):
        arrays.append(conform_array(batch.column(i), field.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def conform_array(arr: pa.Array, target: pa.DataType) -> pa.Array:
    if arr.type == target:
        return arr
    if isinstance(arr.type, pa.ExtensionType):
        arr = arr.storage
    if isinstance(target, pa.ExtensionType):
        storage = arr if arr.type == target.storage_type else arr.cast(target.storage_type)
        return pa.ExtensionArray.from_storage(target, storage)
    return arr.cast(target)


class StreamingSource(Source):
    """Base of the sources in this package: error helpers and the classified streaming reader."""

    def __init__(self, dataset: Dataset) -> None:
        super().__init__(dataset)
        #: The classified error that ended the last stream, if any. DuckDB reports a failure raised
        #: inside a registered reader as its own InvalidInputException, so the accelerator can look
        #: here to recover the TransientRefreshError/TerminalRefreshError type.
        self.stream_error: RefreshError | None = None
        #: Rows the last reader yielded (after source-side filtering), for logs and pushdown tests.
        self.rows_streamed = 0
        self._label: str | None = None
        #: How the source is named before connection details are known (a delegate of an
        #: ``airflow:`` source keeps the ``airflow:`` form here).
        self.label_base = dataset.from_
        #: The table's columns once looked up (see :meth:`cached_columns`).
        self._columns: list[Any] | None = None

    @property
    def description(self) -> str:
        return self._label or self.label_base

    def _message(self, cause: str) -> str:
        return f"Dataset {self.dataset.name}: source {self.description}: {cause}"

    def terminal(self, cause: str, err: BaseException | None = None) -> NoReturn:
        raise self.refresh_error(False, cause) from err

    def transient(self, cause: str, err: BaseException | None = None) -> NoReturn:
        raise self.refresh_error(True, cause) from err

    def refresh_error(self, transient: bool, cause: str) -> RefreshError:
        """A TransientRefreshError (``transient``) or TerminalRefreshError naming the dataset and source."""
        kind = TransientRefreshError if transient else TerminalRefreshError
        return kind(self._message(cause), dataset=self.dataset.name)

    def classify(self, err: BaseException) -> RefreshError:
        """Map a driver exception to a refresh error; a :class:`RefreshError` is returned unchanged.

        Subclasses that know their driver override :meth:`is_transient` (and :meth:`error_cause`).
        """
        if isinstance(err, RefreshError):
            return err
        return self.refresh_error(self.is_transient(err), self.error_cause(err))

    def is_transient(self, err: BaseException) -> bool:
        """Whether retrying can help after the driver exception ``err`` (by default: no)."""
        return False

    def error_cause(self, err: BaseException) -> str:
        """The part of a driver exception's text that goes into the refresh error's message."""
        return str(err)

    def airflow_connection(self, conn_id: str) -> Any:
        """The Airflow connection ``conn_id``; terminal when it does not exist."""
        from airflow.sdk import BaseHook
        from airflow.sdk.exceptions import AirflowNotFoundException

        try:
            return BaseHook.get_connection(conn_id)
        except AirflowNotFoundException as err:
            self.terminal(f"Airflow connection {conn_id!r} not found", err)

    def cached_columns(self, load: Callable[[], list[_Column]]) -> list[_Column]:
        """The table's columns: ``load()`` on the first call (and after a failed one), then its result."""
        if self._columns is None:
            self._columns = load()
        return self._columns

    def catalog_query(
        self,
        conn: _Conn,
        query: Callable[[_Conn], _Result],
        errors: type[BaseException] | tuple[type[BaseException], ...] = Exception,
    ) -> _Result:
        """``query(conn)`` for a schema lookup: ``errors`` it raises are classified; ``conn`` is closed."""
        try:
            return query(conn)
        except errors as err:
            raise self.classify(err) from err
        finally:
            conn.close()

    def reader(
        self,
        schema: pa.Schema,
        batches: Iterable[pa.RecordBatch],
        on_close: Callable[[], None] | None = None,
    ) -> pa.RecordBatchReader:
        """A RecordBatchReader over ``batches`` conformed to ``schema``; driver errors are classified.

        ``on_close`` runs when the stream ends, fails, or is abandoned (generator closed), so the
        server connection is released as soon as DuckDB stops reading.
        """
        self.stream_error = None
        self.rows_streamed = 0

        def gen() -> Iterator[pa.RecordBatch]:
            try:
                for batch in batches:
                    out = conform_batch(batch, schema)
                    self.rows_streamed += out.num_rows
                    yield out
            except RefreshError as err:
                self.stream_error = err
                raise
            except Exception as err:
                classified = self.classify(err)
                self.stream_error = classified
                raise classified from err
            finally:
                if on_close is not None:
                    try:
                        on_close()
                    except Exception as err:  # closing a broken connection may fail again; ignore it
                        log.debug(
                            "Dataset %s: closing the source connection failed: %s", self.dataset.name, err
                        )

        return pa.RecordBatchReader.from_batches(schema, gen())

    @staticmethod
    def select_sql(select_list: str, from_sql: str, request: ScanRequest, where_sql: str | None) -> str:
        """The query a database source sends: projection, the pushed filter, and LIMIT when safe.

        ``where_sql`` is the request's filter in the server's dialect, or ``None`` when it could not
        be pushed. LIMIT is pushed only when the whole filter was (base.py's pushdown contract).
        """
        sql = f"SELECT {select_list} FROM {from_sql}"
        if where_sql is not None:
            sql += f" WHERE {where_sql}"
        if request.limit is not None and (request.where is None or where_sql is not None):
            sql += f" LIMIT {int(request.limit)}"
        return sql

    def check_columns(self, schema: pa.Schema, columns: tuple[str, ...] | None) -> list[str]:
        """The requested columns (all when ``None``), each checked to exist in the source."""
        if columns is None:
            return list(schema.names)
        missing = [c for c in columns if c not in schema.names]
        if missing:
            self.terminal(f"column(s) {', '.join(repr(c) for c in missing)} not found in the source table")
        return list(columns)


def batches_from_rows(
    rows: Iterator[Any],
    schema: pa.Schema,
    converters: list[Callable[[list[Any]], pa.Array]],
    batch_rows: int,
    fetch: Callable[[int], list[Any]] | None = None,
) -> Iterator[pa.RecordBatch]:
    """Build Arrow batches of ``batch_rows`` rows from DB-API rows with one converter per column."""
    while True:
        chunk = fetch(batch_rows) if fetch is not None else _take(rows, batch_rows)
        if not chunk:
            return
        columns = list(zip(*chunk, strict=True))
        arrays = [conv(list(col)) for conv, col in zip(converters, columns, strict=True)]
        yield pa.RecordBatch.from_arrays(arrays, schema=schema)


def _take(rows: Iterator[Any], n: int) -> list[Any]:
    out = []
    for row in rows:
        out.append(row)
        if len(out) >= n:
            break
    return out
