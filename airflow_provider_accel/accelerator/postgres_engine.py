"""The PostgreSQL accelerator: one table per dataset on a PostgreSQL server (``engine: postgres``).

Rows arrive through ADBC's Arrow bulk ingest (``COPY ... BINARY``), never row-by-row INSERTs.

* **full refresh** — one transaction: the rows are ingested into a staging table, then the live
  table is dropped and the staging table renamed in its place. The live table's lock is taken by the
  ``DROP`` at the very end, so it is held for the rename and the commit (milliseconds), not for the
  load. A reader in another session sees the old table or the new one; one that queries during the
  swap waits for the commit and then reads the new table (PostgreSQL resolves the name again after
  a lock wait). A killed refresh rolls back on the server: no staging table is left behind.
* **append** — one transaction: the increment is ingested into a temporary table and merged with the
  shared conflict policies.
* **one writer per dataset**, across hosts: a transaction-scoped advisory lock on the table's name.

Where: ``params.pg_schema`` (this provider's own key; default ``public``) and the dataset's name as
the table, both quoted. Names PostgreSQL would truncate (over 63 bytes) or cannot hold are refused.
Connection: Spice's ``pg_host``, ``pg_port``, ``pg_db``, ``pg_user``, ``pg_pass``, ``pg_sslmode``
(Spice's default ``verify-full``), ``pg_sslrootcert``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote, urlencode

import adbc_driver_manager
import adbc_driver_postgresql.dbapi as pg

from airflow_provider_accel.accelerator import indexes, retention
from airflow_provider_accel.accelerator.conflict import AppendTarget
from airflow_provider_accel.accelerator.engine import POSTGRES, EngineCapabilities
from airflow_provider_accel.accelerator.finish import evict_and_index
from airflow_provider_accel.accelerator.sql_engine import ArrowEngineHook, ArrowStream, Written
from airflow_provider_accel.accelerator.strategies import FetchPlan, LiveState
from airflow_provider_accel.accelerator.timefilter import TimeColumn
from airflow_provider_accel.exceptions import (
    RefreshError,
    SourceLockedError,
    TerminalRefreshError,
    TransientRefreshError,
)
from airflow_provider_accel.sources.file import sql_string
from airflow_provider_accel.sql.refresh_sql import quote_identifier

if TYPE_CHECKING:
    from airflow_provider_accel.spicepod.model import Dataset

DEFAULT_SCHEMA = "public"
#: Spice's default pg_sslmode.
DEFAULT_SSLMODE = "verify-full"
#: PostgreSQL's identifier limit (NAMEDATALEN - 1): longer names are silently truncated.
MAX_IDENTIFIER_BYTES = 63
STAGING_PREFIX = "__accel_stage_"
#: SQLSTATE classes and codes that may succeed when tried again.
TRANSIENT_SQLSTATES = ("08", "40001", "40P01", "53", "57P01", "57P02", "57P03", "58")
LOCK_SQLSTATES = ("55P03",)  # lock_not_available (lock_timeout)
UNIQUE_VIOLATION = "23505"
#: The staging table's indexes carry this suffix until the swap renames them (names are schema-wide).
STAGED_INDEX_SUFFIX = "_staged"
#: The table comment's key holding the source's columns at the last committed refresh.
SOURCE_COLUMNS_KEY = "accel_source_columns"
#: libpq reports connection failures without a SQLSTATE: these say the settings are wrong, not the server.
TERMINAL_CONNECT_MESSAGES = (
    "does not exist",
    "password authentication failed",
    "no pg_hba.conf entry",
    "certificate",
    "invalid sslmode",
)


def _checked_identifier(name: str, what: str, dataset: str) -> str:
    if "\x00" in name or not name.strip():
        raise TerminalRefreshError(
            f"Dataset {dataset}: {what} {name!r} cannot be a PostgreSQL name (empty or holding NUL).",
            dataset=dataset,
        )
    if len(name.encode()) > MAX_IDENTIFIER_BYTES:
        raise TerminalRefreshError(
            f"Dataset {dataset}: {what} {name!r} is longer than PostgreSQL's {MAX_IDENTIFIER_BYTES} bytes "
            "and would be truncated; shorten the dataset name or choose params.pg_schema.",
            dataset=dataset,
        )
    return quote_identifier(name)


class PostgresLiveSql:
    """:class:`~.engine.LiveSql` on an ADBC PostgreSQL cursor."""

    capabilities: EngineCapabilities = POSTGRES

    def __init__(self, cursor: Any) -> None:
        self.cursor = cursor

    def count(self, sql: str) -> int:
        self.cursor.execute(sql)
        return max(int(self.cursor.rowcount), 0)

    def describe(self, table: str) -> list[tuple[str, str]]:
        self.cursor.execute(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
            f"WHERE attrelid = {sql_string(table)}::regclass AND attnum > 0 AND NOT attisdropped "
            "ORDER BY attnum"
        )
        return [(str(name), str(type_)) for name, type_ in self.cursor.fetchall()]

    def execute(self, sql: str) -> None:
        self.cursor.execute(sql)

    def widens(self, old_type: str, new_type: str) -> bool:
        # PostgreSQL's own rule: an implicit cast (castcontext 'i') exists, such as integer -> bigint.
        # to_regtype answers NULL rather than failing (a failure would abort the transaction).
        self.cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_cast WHERE castcontext = 'i' "
            f"AND castsource = to_regtype({sql_string(old_type)}) "
            f"AND casttarget = to_regtype({sql_string(new_type)}))"
        )
        return bool(self.cursor.fetchone()[0])

    def rebuild(self, table: str, name: str, columns: list[tuple[str, str, str]]) -> None:
        raise NotImplementedError("PostgreSQL alters columns in place (alter_columns)")

    def index_names(self, table: str, name: str) -> list[str]:
        self.cursor.execute(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            f"WHERE i.indrelid = to_regclass({sql_string(table)})"
        )
        return [str(index) for (index,) in self.cursor.fetchall()]

    def is_unique_violation(self, err: BaseException) -> bool:
        return str(getattr(err, "sqlstate", "") or "") == UNIQUE_VIOLATION


class PostgresAcceleratorHook(ArrowEngineHook):
    """Accelerates spicepod datasets into PostgreSQL tables (``engine: postgres``)."""

    capabilities: ClassVar[EngineCapabilities] = POSTGRES

    # -- where --------------------------------------------------------------------------------

    @staticmethod
    def _params(dataset: Dataset) -> dict[str, Any]:
        return dict(dataset.acceleration.params) if dataset.acceleration else {}

    def schema(self, dataset: Dataset) -> str:
        return str(self._params(dataset).get("pg_schema") or DEFAULT_SCHEMA)

    def names(self, dataset: Dataset) -> tuple[str, str, str]:
        """(quoted schema, quoted table, quoted staging table) of the dataset, checked."""
        schema = _checked_identifier(self.schema(dataset), "pg_schema", dataset.name)
        table = _checked_identifier(dataset.name, "the dataset name", dataset.name)
        digest = hashlib.sha1(dataset.name.encode(), usedforsecurity=False).hexdigest()[:16]
        return schema, table, quote_identifier(STAGING_PREFIX + digest)

    def uri(self, dataset: Dataset) -> str:
        """The libpq URI of Spice's pg_* params (holds the password: never log it)."""
        params = self._params(dataset)
        host = params.get("pg_host")
        if not host:
            raise TerminalRefreshError(
                f"Dataset {dataset.name}: acceleration.params.pg_host is required for engine postgres.",
                dataset=dataset.name,
            )
        user = quote(str(params.get("pg_user") or ""), safe="")
        password = params.get("pg_pass")
        auth = f"{user}:{quote(str(password), safe='')}@" if password else (f"{user}@" if user else "")
        query = {"sslmode": str(params.get("pg_sslmode") or DEFAULT_SSLMODE)}
        if params.get("pg_sslrootcert"):
            query["sslrootcert"] = str(params["pg_sslrootcert"])
        port = params.get("pg_port") or 5432
        db = quote(str(params.get("pg_db") or "postgres"), safe="")
        return f"postgresql://{auth}{quote(str(host), safe='')}:{port}/{db}?{urlencode(query)}"

    def location(self, dataset: Dataset) -> str:
        params = self._params(dataset)
        return (
            f"{params.get('pg_host')}:{params.get('pg_port') or 5432}/{params.get('pg_db') or 'postgres'}"
            f".{self.schema(dataset)}.{dataset.name}"
        )

    @contextlib.contextmanager
    def connect(self, dataset: Dataset) -> Iterator[Any]:
        """An ADBC connection (transactions on) with the writer's lock and statement settings."""
        con = pg.connect(self.uri(dataset))
        try:
            yield con
        finally:
            with contextlib.suppress(Exception):
                con.rollback()
            con.close()

    def _begin(self, cursor: Any, dataset: Dataset) -> None:
        """Start the writer's transaction: bounded lock waits, then the dataset's advisory lock."""
        schema, table, _ = self.names(dataset)
        cursor.execute(f"SET LOCAL lock_timeout = '{int(self.lock_timeout * 1000)}ms'")
        cursor.execute(f"SELECT pg_advisory_xact_lock(hashtext({sql_string(schema + '.' + table)}))")

    # -- the shared story's hooks -------------------------------------------------------------

    def writer_lock(self, dataset: Dataset) -> contextlib.AbstractContextManager[Any]:
        return contextlib.nullcontext()  # taken in each write transaction (advisory lock)

    def recover(self, dataset: Dataset) -> None:
        """A killed refresh rolled back on the server; drop a staging table left by anything else."""
        schema, _, staging = self.names(dataset)
        with self.connect(dataset) as con, con.cursor() as cursor:
            self._begin(cursor, dataset)
            cursor.execute(f"DROP TABLE IF EXISTS {schema}.{staging}")
            con.commit()

    def inspect_live(self, dataset: Dataset, *, want_watermark: bool) -> LiveState:
        schema_q, table_q, _ = self.names(dataset)
        state = LiveState()
        with self.connect(dataset) as con, con.cursor() as cursor:
            cursor.execute(
                "SELECT table_name FROM information_schema.tables "
                f"WHERE table_schema = {sql_string(self.schema(dataset))}"
            )
            names = [str(name) for (name,) in cursor.fetchall() if not str(name).startswith(STAGING_PREFIX)]
            state.exists = True
            # Exact match: PostgreSQL names are case-sensitive once quoted.
            state.table_exists = dataset.name in names
            # The table is swapped alone, whatever else lives in the schema.
            state.other_tables = []
            if not state.table_exists:
                return state
            qualified = f"{schema_q}.{table_q}"
            state.columns = PostgresLiveSql(cursor).describe(qualified)
            cursor.execute(f"SELECT count(*) FROM {qualified}")
            state.row_count = int(cursor.fetchone()[0])
            if want_watermark and dataset.time_column and state.row_count:
                state.watermark = self._watermark(cursor, dataset, state.columns, qualified)
        return state

    @staticmethod
    def _watermark(cursor: Any, dataset: Dataset, columns: list[tuple[str, str]], qualified: str) -> Any:
        assert dataset.time_column is not None
        if dataset.time_column not in {name for name, _ in columns}:
            raise TerminalRefreshError(
                f"Dataset {dataset.name}: time_column {dataset.time_column!r} is not a column "
                f"of the accelerated table; run a full refresh or fix time_column.",
                dataset=dataset.name,
            )
        instant = TimeColumn(dataset.time_column, dataset.time_format).instant_sql()
        cursor.execute(f"SELECT max({instant}) FROM {qualified}")
        return cursor.fetchone()[0]

    def _stats(self, cursor: Any, dataset: Dataset, qualified: str) -> tuple[int, str | None]:
        cursor.execute(f"SELECT count(*) FROM {qualified}")
        total = int(cursor.fetchone()[0])
        watermark = None
        if dataset.time_column and total:
            columns = PostgresLiveSql(cursor).describe(qualified)
            value = self._watermark(cursor, dataset, columns, qualified)
            watermark = None if value is None else str(value)
        return total, watermark

    def replace(self, dataset: Dataset, stream: ArrowStream, live: LiveState) -> Written:
        schema, table, staging = self.names(dataset)
        with self.connect(dataset) as con, con.cursor() as cursor:
            self._begin(cursor, dataset)
            cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            cursor.execute(f"DROP TABLE IF EXISTS {schema}.{staging}")
            cursor.adbc_ingest(
                staging.strip('"'),
                stream.counted_reader(),
                mode="create",
                db_schema_name=self.schema(dataset),
            )
            sql = PostgresLiveSql(cursor)
            staged = f"{schema}.{staging}"
            # retention_sql and indexes on the staged table, before the live table's lock is taken.
            columns = [name for name, _ in sql.describe(staged)]
            evict_and_index(sql, dataset, staged, columns, index_suffix=STAGED_INDEX_SUFFIX)
            # The swap: the live table's lock is taken here and released by the commit below.
            cursor.execute(f"DROP TABLE IF EXISTS {schema}.{table}")
            cursor.execute(f"ALTER TABLE {staged} RENAME TO {table}")
            indexes.rename_staged(sql, dataset, schema, STAGED_INDEX_SUFFIX)
            self._record(cursor, f"{schema}.{table}", stream.source_columns)
            total, watermark = self._stats(cursor, dataset, f"{schema}.{table}")
            con.commit()
        return Written(stream.rows, total, watermark)

    def merge(self, dataset: Dataset, stream: ArrowStream, plan: FetchPlan) -> Written:
        schema, table, staging = self.names(dataset)
        qualified = f"{schema}.{table}"
        with self.connect(dataset) as con, con.cursor() as cursor:
            self._begin(cursor, dataset)
            cursor.execute(f"DROP TABLE IF EXISTS pg_temp.{staging}")
            cursor.adbc_ingest(staging.strip('"'), stream.counted_reader(), mode="create", temporary=True)
            staged = f"pg_temp.{staging}"
            sql = PostgresLiveSql(cursor)
            names = tuple(name for name, _ in sql.describe(staged))
            target = AppendTarget(dataset, qualified, staged, names, plan.dedup_cutoff)
            written = plan.strategy.merge(sql, plan, target)
            cursor.execute(f"DROP TABLE {staged}")
            columns = [name for name, _ in sql.describe(qualified)] if indexes.specs(dataset) else []
            evict_and_index(sql, dataset, qualified, columns)
            self._record(cursor, qualified, stream.source_columns)
            total, watermark = self._stats(cursor, dataset, qualified)
            con.commit()
        return Written(written, total, watermark)

    # -- the source's columns at the last refresh: the table's comment, written in the commit ----

    @staticmethod
    def _recorded(cursor: Any, qualified: str) -> list[tuple[str, str]] | None:
        cursor.execute(f"SELECT obj_description(to_regclass({sql_string(qualified)}), 'pg_class')")
        row = cursor.fetchone()
        try:
            columns = json.loads(row[0])[SOURCE_COLUMNS_KEY] if row and row[0] else None
        except (ValueError, TypeError, KeyError):
            return None  # a comment of someone else's: no record
        return None if columns is None else [(str(c[0]), str(c[1])) for c in columns]

    @classmethod
    def _record(cls, cursor: Any, qualified: str, columns: list[tuple[str, str]]) -> None:
        # Written only when it changes: COMMENT takes a lock that autovacuum's also takes.
        if cls._recorded(cursor, qualified) == columns:
            return
        record = json.dumps({SOURCE_COLUMNS_KEY: [[name, type_] for name, type_ in columns]})
        cursor.execute(f"COMMENT ON TABLE {qualified} IS {sql_string(record)}")

    def recorded_source(self, dataset: Dataset) -> list[tuple[str, str]] | None:
        schema, table, _ = self.names(dataset)
        with self.connect(dataset) as con, con.cursor() as cursor:
            return self._recorded(cursor, f"{schema}.{table}")

    def delete_where(
        self, dataset: Dataset, period: tuple[TimeColumn, Any] | None, condition: str | None
    ) -> tuple[int, int]:
        schema, table, _ = self.names(dataset)
        qualified = f"{schema}.{table}"
        if not self.inspect_live(dataset, want_watermark=False).table_exists:
            return 0, 0
        predicates = [] if condition is None else [condition]
        if period is not None:
            time_column, cutoff = period
            predicates.insert(0, time_column.before(cutoff))
        where = " OR ".join(f"({p})" for p in predicates)
        with self.connect(dataset) as con, con.cursor() as cursor:
            self._begin(cursor, dataset)
            deleted = retention.evict(PostgresLiveSql(cursor), qualified, where)
            cursor.execute(f"SELECT count(*) FROM {qualified}")
            total = int(cursor.fetchone()[0])
            con.commit()
        return deleted, total

    def preview(self, dataset: Dataset, limit: int) -> tuple[list[tuple[str, str]], int | None, list[Any]]:
        live = self.inspect_live(dataset, want_watermark=False)
        if not live.table_exists:
            return [], None, []
        schema, table, _ = self.names(dataset)
        with self.connect(dataset) as con, con.cursor() as cursor:
            cursor.execute(f"SELECT * FROM {schema}.{table} LIMIT {int(limit)}")
            rows = [tuple(row) for row in cursor.fetchall()]
        return live.columns, live.row_count, rows

    def naming(self, dataset: Dataset) -> tuple[str, str]:
        """OpenLineage's PostgreSQL naming: ``postgres://host:port`` and ``db.schema.table``."""
        params = self._params(dataset)
        namespace = f"postgres://{params.get('pg_host')}:{params.get('pg_port') or 5432}"
        return namespace, f"{params.get('pg_db') or 'postgres'}.{self.schema(dataset)}.{dataset.name}"

    def classify(self, err: Exception, dataset: str, doing: str) -> RefreshError | None:
        if not isinstance(err, adbc_driver_manager.Error):
            return None
        sqlstate = str(getattr(err, "sqlstate", "") or "")
        message = f"Dataset {dataset}: {doing} in PostgreSQL failed: {err}"
        if not sqlstate and any(text in str(err) for text in TERMINAL_CONNECT_MESSAGES):
            return TerminalRefreshError(message + " Check the dataset's pg_* params.", dataset=dataset)
        if sqlstate.startswith(LOCK_SQLSTATES):
            return SourceLockedError(message, dataset=dataset)
        if sqlstate.startswith(TRANSIENT_SQLSTATES) or (
            not sqlstate
            and isinstance(err, adbc_driver_manager.OperationalError | adbc_driver_manager.InternalError)
        ):
            return TransientRefreshError(message, dataset=dataset)
        if not sqlstate and "IO" in str(getattr(err, "status_code", "")):
            return TransientRefreshError(message, dataset=dataset)
        return TerminalRefreshError(message, dataset=dataset)
