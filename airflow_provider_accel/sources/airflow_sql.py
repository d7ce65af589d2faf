"""``airflow:<conn_id>/<table>`` or ``airflow:<conn_id>/<schema>.<table>``: a table behind any Airflow
connection whose hook is a common.sql ``DbApiHook``.

* PostgreSQL and MySQL/MariaDB connections (``conn_type`` ``postgres``/``mysql``) are read by the
  dedicated streaming sources (:mod:`.postgres` with ADBC, :mod:`.mysql` with an unbuffered cursor),
  with the connection's host, port, login, password and schema (= database).
* Any other connection type: ``BaseHook.get_connection(conn_id).get_hook()`` must be a
  ``DbApiHook``; the query is built with sqlglot in the hook's dialect (``hook.dialect_name``;
  ANSI SQL when sqlglot does not know it), with the projection, the filter and the limit pushed
  down, and rows are fetched with ``cursor.fetchmany`` in batches (``airflow_batch_rows``, default
  10,000). Whether that streams from the server depends on the driver (most do; see the report).
  Arrow types are inferred from the first batch's values (decimals take the cursor description's
  precision/scale when it gives them); a later value that does not fit is a terminal error naming
  the column.

Identifiers in ``<table>`` may be double-quoted to keep dots or case: ``airflow:wh/"My.Schema".t``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar

import pyarrow as pa

from airflow_provider_accel.sources._common import DEFAULT_BATCH_ROWS, split_identifier
from airflow_provider_accel.sources.base import ScanRequest, Source, SourceScan
from airflow_provider_accel.sources.database import Column, DatabaseSource, Dialect
from airflow_provider_accel.sources.sqlite import SQLITE, primary_result_code

if TYPE_CHECKING:
    import duckdb

    from airflow_provider_accel.spicepod.model import Dataset

log = logging.getLogger(__name__)

#: Airflow dialect names (``DbApiHook.dialect_name``/``conn_type``) -> sqlglot dialects.
_SQLGLOT_DIALECTS = {
    "postgresql": "postgres",
    "postgres": "postgres",
    "redshift": "redshift",
    "mysql": "mysql",
    "sqlite": "sqlite",
    "mssql": "tsql",
    "oracle": "oracle",
    "snowflake": "snowflake",
    "bigquery": "bigquery",
    "gcpbigquery": "bigquery",
    "trino": "trino",
    "presto": "presto",
    "databricks": "databricks",
    "hive": "hive",
    "hiveserver2": "hive",
    "spark": "spark",
    "clickhouse": "clickhouse",
    "duckdb": "duckdb",
    "teradata": "teradata",
    "exasol": "exasol",
    "vertica": "postgres",
}


def parse_from(from_: str) -> tuple[str, str]:
    """``airflow:conn/schema.table`` -> (``conn``, ``schema.table``)."""
    rest = from_.split(":", 1)[1]
    conn_id, sep, table = rest.partition("/")
    if not sep or not conn_id or not table:
        raise ValueError("expected airflow:<conn_id>/<table> or airflow:<conn_id>/<schema>.<table>")
    return conn_id, table


GENERIC = Dialect(
    title="the database",
    sqlglot=None,  # from the hook's dialect_name, per connection
    # sqlite3 (the one stdlib driver) carries a result code; other drivers are classed by PEP 249.
    error_code=primary_result_code,
    transient=SQLITE.transient,
)


def _dedicated_sources() -> dict[str, type[DatabaseSource]]:
    """Airflow ``conn_type`` -> the dedicated source that reads such a connection."""
    from airflow_provider_accel.sources.mysql import MySQLSource
    from airflow_provider_accel.sources.postgres import PostgresSource

    return {kind: cls for cls in (PostgresSource, MySQLSource) for kind in cls.dialect.conn_types}


class AirflowSqlSource(DatabaseSource):
    """A table behind an Airflow SQL connection whose type has no dedicated source."""

    prefixes: ClassVar[tuple[str, ...]] = ("airflow:",)
    dialect = GENERIC

    def __init__(self, dataset: Dataset) -> None:
        super().__init__(dataset)
        try:
            self.conn_id, self.table = parse_from(dataset.from_)
        except ValueError as err:
            self.terminal(str(err), err)
        self._dbapi_conn: Any = None
        self._producer: _Producer | None = None
        self.batch_rows = int(dataset.params.get("airflow_batch_rows") or DEFAULT_BATCH_ROWS)

    @classmethod
    def for_dataset(cls, dataset: Dataset) -> Source:
        """The dedicated source when the connection's type has one (PostgreSQL, MySQL), else this one.

        The dedicated source reads the same connection by id (``postgres_conn_id``/``mysql_conn_id``)
        and keeps the ``airflow:`` form in its messages.
        """
        generic = cls(dataset)
        dedicated = _dedicated_sources().get((generic._connection().conn_type or "").lower())
        if dedicated is None:
            return generic
        conn_id_param = dedicated.dialect.conn_id_param
        assert conn_id_param is not None  # every dedicated source declares how it reads a connection
        source = dedicated(
            dataclasses.replace(
                dataset,
                from_=f"{dedicated.prefixes[0]}{generic.table}",
                params={**dataset.params, conn_id_param: generic.conn_id},
            )
        )
        source.label_base = dataset.from_
        return source

    # -- connection -------------------------------------------------------------------------

    def _connection(self) -> Any:
        return self.airflow_connection(self.conn_id)

    def _hook(self) -> Any:
        from airflow.providers.common.sql.hooks.sql import DbApiHook

        conn = self._connection()
        try:
            hook = conn.get_hook()
        except Exception as err:  # provider not installed, unknown conn_type
            self.terminal(
                f"cannot build a hook for connection {self.conn_id!r} ({conn.conn_type}): {err}", err
            )
        if not isinstance(hook, DbApiHook):
            self.terminal(f"connection {self.conn_id!r} ({conn.conn_type}) has no SQL (DbApiHook) hook")
        return hook

    def sqlglot_dialect(self, hook: Any) -> str | None:
        name = (getattr(hook, "dialect_name", None) or getattr(hook, "conn_type", None) or "").lower()
        return _SQLGLOT_DIALECTS.get(name)

    # -- query ---------------------------------------------------------------------------------

    def build_sql(
        self, dialect: str | None, columns: list[str] | None, where: str | None, limit: int | None
    ) -> str:
        import sqlglot
        from sqlglot import exp

        parts = split_identifier(self.table)
        table = exp.Table(
            this=exp.to_identifier(parts[-1], quoted=True),
            db=exp.to_identifier(parts[-2], quoted=True) if len(parts) >= 2 else None,
            catalog=exp.to_identifier(parts[-3], quoted=True) if len(parts) >= 3 else None,
        )
        select = [exp.column(c, quoted=True) for c in columns] if columns else [exp.Star()]
        query = exp.select(*select).from_(table)
        if where is not None:
            query = query.where(exp.condition(where, dialect="duckdb"))
        if limit is not None:
            query = query.limit(limit)
        return query.sql(dialect=dialect or "", unsupported_level=sqlglot.ErrorLevel.RAISE)

    def _execute(self, hook: Any, request: ScanRequest | None) -> tuple[Any, str]:
        dialect = self.sqlglot_dialect(hook)
        columns = list(request.columns) if request and request.columns else None
        where = request.where if request else None
        limit = request.limit if request else None
        query = None
        if where is not None and dialect is not None:
            try:
                query = self.build_sql(dialect, columns, where, limit)
            except Exception as err:  # sqlglot cannot express the filter here: read unfiltered
                log.info("Dataset %s: filter not pushed down to %s: %s", self.dataset.name, dialect, err)
        if query is None:
            query = self.build_sql(dialect, columns, None, limit if where is None else None)
        try:
            self._dbapi_conn = hook.get_conn()
            cursor = self._dbapi_conn.cursor()
            cursor.arraysize = self.batch_rows
            cursor.execute(query)
        except Exception as err:
            self.close()
            raise self.classify(err) from err
        self.last_query = query
        log.info("Dataset %s: reading %s with: %s", self.dataset.name, self.description, query)
        return cursor, query

    # -- Source -------------------------------------------------------------------------------

    def load_columns(self) -> list[Column]:
        cursor, _ = self._execute(self._hook(), ScanRequest(limit=self.batch_rows))
        try:
            rows = cursor.fetchmany(self.batch_rows)
            schema = self._infer(cursor.description, rows)
        except Exception as err:
            raise self.classify(err) from err
        finally:
            self.close()
        return [Column(f.name, f.type, self.quote(f.name), _generic_converter(f.type)) for f in schema]

    def scan(self, request: ScanRequest, con: duckdb.DuckDBPyConnection) -> SourceScan:
        chosen = self.wanted_columns(request)
        schema = pa.schema([pa.field(c.name, c.arrow) for c in chosen])
        hook = self._hook()
        self.close()
        producer = _Producer(
            self,
            hook,
            dataclasses.replace(request, columns=tuple(c.name for c in chosen)),
            schema,
            self.converters(chosen),
        )
        self._producer = producer
        producer.start()  # raises the classified error when the query fails to start
        return SourceScan(reader=self.reader(schema, producer.batches(), on_close=self.close))

    def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            producer.stop()
        conn, self._dbapi_conn = self._dbapi_conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception as err:  # already broken
                log.debug("Dataset %s: closing the connection: %s", self.dataset.name, err)

    # -- types ---------------------------------------------------------------------------------

    def _infer(self, description: Any, rows: list[Any]) -> pa.Schema:
        fields = []
        for i, desc in enumerate(description or ()):
            name = str(desc[0])
            values = [row[i] for row in rows]
            fields.append(pa.field(name, self._infer_type(name, desc, values)))
        return pa.schema(fields)

    def _infer_type(self, name: str, desc: Any, values: list[Any]) -> pa.DataType:
        sample = next((v for v in values if v is not None), None)
        if sample is None:
            # No value to learn from: text keeps any value's meaning readable.
            return pa.string()
        if isinstance(sample, bool):
            return pa.bool_()
        if isinstance(sample, int):
            return pa.int64()
        if isinstance(sample, float):
            return pa.float64()
        if isinstance(sample, decimal.Decimal):
            return _decimal_type(desc, values)
        if isinstance(sample, dt.datetime):
            return pa.timestamp("us", tz="UTC") if sample.tzinfo else pa.timestamp("us")
        if isinstance(sample, dt.date):
            return pa.date32()
        if isinstance(sample, dt.time):
            return pa.time64("us")
        if isinstance(sample, dt.timedelta):
            return pa.duration("us")
        if isinstance(sample, bytes | bytearray | memoryview):
            return pa.binary()
        if isinstance(sample, str):
            return pa.string()
        try:
            return pa.array(values).type
        except (pa.ArrowException, TypeError, ValueError) as err:
            self.terminal(f"column {name!r}: values of type {type(sample).__name__} are not supported", err)


def _decimal_type(desc: Any, values: list[Any]) -> pa.DataType:
    """DECIMAL(p, s) from the cursor description when it gives them, else from the values' scale.

    NaN and Infinity have no scale (their exponent is ``'n'``, ``'N'`` or ``'F'``): they are skipped
    here, and a batch holding one fails in its converter with the column named, as any value that
    does not fit.
    """
    precision = desc[4] if len(desc) > 4 and isinstance(desc[4], int) and 0 < desc[4] <= 38 else 38
    scale = desc[5] if len(desc) > 5 and isinstance(desc[5], int) and 0 <= desc[5] <= precision else None
    if scale is None:
        exponents = [
            v.as_tuple().exponent for v in values if isinstance(v, decimal.Decimal) and v.is_finite()
        ]
        scale = min(max(max((-int(e) for e in exponents), default=0), 0), 18)
    return pa.decimal128(precision, scale)


def _generic_converter(arrow: pa.DataType) -> Callable[[list[Any]], pa.Array]:
    """Values of an arbitrary DB-API driver -> ``arrow`` (buffers to bytes, non-text values to text)."""

    def convert(values: list[Any]) -> pa.Array:
        if pa.types.is_binary(arrow):
            values = [bytes(v) if isinstance(v, bytearray | memoryview) else v for v in values]
        if pa.types.is_string(arrow):
            values = [v if v is None or isinstance(v, str) else str(v) for v in values]
        return pa.array(values, type=arrow)

    return convert


class _Producer:
    """Runs the DB-API cursor on one thread of its own and hands batches over a bounded queue.

    DuckDB pulls a registered reader from its own worker threads, and several drivers (sqlite3,
    most ODBC wrappers) only allow a connection on the thread that opened it; the queue (two
    batches) keeps memory bounded while the driver stays on one thread.
    """

    _END = object()

    def __init__(
        self,
        source: AirflowSqlSource,
        hook: Any,
        request: ScanRequest,
        schema: pa.Schema,
        converters: list[Callable[[list[Any]], pa.Array]],
    ) -> None:
        self.source = source
        self.hook = hook
        self.request = request
        self.schema = schema
        self.converters = converters
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=2)
        self.ready: queue.Queue[BaseException | None] = queue.Queue(maxsize=1)
        self.stopped = threading.Event()
        self.thread = threading.Thread(
            target=self._run, name=f"accel-source-{source.dataset.name}", daemon=True
        )

    def start(self) -> None:
        self.thread.start()
        err = self.ready.get()
        if err is not None:
            self.thread.join()
            raise err

    def _put(self, item: Any) -> bool:
        while not self.stopped.is_set():
            try:
                self.queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        source = self.source
        try:
            cursor, _ = source._execute(self.hook, self.request)
        except BaseException as err:
            self.ready.put(err)
            return
        self.ready.put(None)
        try:
            while not self.stopped.is_set():
                rows = cursor.fetchmany(source.batch_rows)
                if not rows:
                    break
                columns = list(zip(*rows, strict=True))
                batch = pa.RecordBatch.from_arrays(
                    [conv(list(col)) for conv, col in zip(self.converters, columns, strict=True)],
                    schema=self.schema,
                )
                if not self._put(batch):
                    break
            self._put(self._END)
        except BaseException as err:
            self._put(err)
        finally:
            conn, source._dbapi_conn = source._dbapi_conn, None
            if conn is not None:
                try:
                    conn.close()
                except Exception as err:  # already broken
                    log.debug("Dataset %s: closing the connection: %s", source.dataset.name, err)

    def batches(self) -> Iterator[pa.RecordBatch]:
        while True:
            item = self.queue.get()
            if item is self._END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def stop(self) -> None:
        self.stopped.set()
        if threading.current_thread() is not self.thread:
            self.thread.join(timeout=30)
