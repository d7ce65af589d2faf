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
(Spice's default ``verify-full``), ``pg_sslrootcert``; or ``postgres_conn_id``, this provider's own
extension (the name the ``postgres:`` source uses): an Airflow Postgres connection whose host, port,
schema (the database), login, password and extra ``sslmode`` / ``sslrootcert`` fill the ``pg_*``
params, an explicit ``pg_*`` param overriding its field. Without ``sslmode`` in the connection or
``pg_sslmode`` the connection is opened with libpq's default (``prefer``), as Airflow's own
PostgresHook opens it. ``${secrets:..}`` / ``${env:..}`` placeholders resolve at the point of use;
the password is never logged, shown or part of an error.
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
    SpicepodError,
    TerminalRefreshError,
    TransientRefreshError,
)
from airflow_provider_accel.sources.database import params_from_connection
from airflow_provider_accel.sources.file import sql_string
from airflow_provider_accel.sources.postgres import POSTGRES as POSTGRES_SOURCE
from airflow_provider_accel.sql.refresh_sql import quote_identifier

if TYPE_CHECKING:
    from airflow_provider_accel.spicepod.model import Dataset

DEFAULT_SCHEMA = "public"
#: This provider's own param: an Airflow connection holding the server's settings.
CONN_ID_PARAM = "postgres_conn_id"
#: Airflow connection types read as PostgreSQL (the ``postgres:`` source reads the same).
CONNECTION_TYPES = POSTGRES_SOURCE.conn_types
#: Airflow connection field -> pg_* param: the source's, plus the CA file the engine also reads.
CONNECTION_FIELDS = (*POSTGRES_SOURCE.connection_fields, ("extra.sslrootcert", "pg_sslrootcert"))
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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: The settings of each dataset, read once per hook (a refresh connects several times).
        self._settings: dict[tuple[str, bool], dict[str, Any]] = {}

    # -- where --------------------------------------------------------------------------------

    @staticmethod
    def _params(dataset: Dataset) -> dict[str, Any]:
        return dict(dataset.acceleration.params) if dataset.acceleration else {}

    def settings(self, dataset: Dataset, *, with_password: bool = False) -> dict[str, Any]:
        """The ``pg_*`` params in force: the Airflow connection's fields, then the explicit params.

        Placeholders are resolved; ``pg_pass`` only ``with_password`` (the status route and the UI
        never need it, so a secret missing on the API server does not hide where the data lives).
        """
        key = (dataset.name, with_password)
        if key in self._settings:
            return self._settings[key]
        from airflow_provider_accel.spicepod.secrets import resolve_params

        explicit = {k: v for k, v in self._params(dataset).items() if v not in (None, "")}
        if not with_password:
            explicit.pop("pg_pass", None)
        try:
            explicit = resolve_params(explicit, dataset.name, prefix="acceleration.params")
        except SpicepodError as err:
            raise TerminalRefreshError(str(err), dataset=dataset.name) from err
        conn_id = explicit.get(CONN_ID_PARAM)
        settings = dict(explicit)
        if conn_id:
            from_connection = params_from_connection(
                self._connection(dataset, str(conn_id)), CONNECTION_FIELDS
            )
            if not with_password:
                from_connection.pop("pg_pass", None)
            settings = {**from_connection, **explicit}
        if not settings.get("pg_host"):
            raise TerminalRefreshError(
                f"Dataset {dataset.name}: engine postgres needs acceleration.params.pg_host (or "
                f"{CONN_ID_PARAM}, an Airflow connection with a host).",
                dataset=dataset.name,
            )
        self._settings[key] = settings
        return settings

    @staticmethod
    def _connection(dataset: Dataset, conn_id: str) -> Any:
        """The Airflow connection ``conn_id`` of a Postgres type; terminal when missing or of another type."""
        from airflow.sdk import BaseHook
        from airflow.sdk.exceptions import AirflowNotFoundException

        where = f"Dataset {dataset.name}: acceleration.params.{CONN_ID_PARAM} {conn_id!r}"
        try:
            conn = BaseHook.get_connection(conn_id)
        except AirflowNotFoundException as err:
            raise TerminalRefreshError(
                f"{where} is not an Airflow connection: create it (Admin -> Connections, "
                f"`airflow connections add {conn_id} --conn-type postgres ...`, or the environment "
                f"variable AIRFLOW_CONN_{conn_id.upper()}), or give pg_host and the other pg_* params.",
                dataset=dataset.name,
            ) from err
        if conn.conn_type not in CONNECTION_TYPES:
            raise TerminalRefreshError(
                f"{where} is a {conn.conn_type!r} connection; engine postgres needs a postgres one.",
                dataset=dataset.name,
            )
        return conn

    def schema(self, dataset: Dataset) -> str:
        return str(self._params(dataset).get("pg_schema") or DEFAULT_SCHEMA)

    def names(self, dataset: Dataset) -> tuple[str, str, str]:
        """(quoted schema, quoted table, quoted staging table) of the dataset, checked."""
        schema = _checked_identifier(self.schema(dataset), "pg_schema", dataset.name)
        table = _checked_identifier(dataset.name, "the dataset name", dataset.name)
        digest = hashlib.sha1(dataset.name.encode(), usedforsecurity=False).hexdigest()[:16]
        return schema, table, quote_identifier(STAGING_PREFIX + digest)

    def uri(self, dataset: Dataset) -> str:
        """The libpq URI of the settings in force (holds the password: never log it)."""
        params = self.settings(dataset, with_password=True)
        user = quote(str(params.get("pg_user") or ""), safe="")
        password = params.get("pg_pass")
        auth = f"{user}:{quote(str(password), safe='')}@" if password else (f"{user}@" if user else "")
        # Spice's default sslmode for its own params; an Airflow connection keeps libpq's, as PostgresHook.
        default_sslmode = None if params.get(CONN_ID_PARAM) else DEFAULT_SSLMODE
        sslmode = params.get("pg_sslmode") or default_sslmode
        query = {"sslmode": str(sslmode)} if sslmode else {}
        if params.get("pg_sslrootcert"):
            query["sslrootcert"] = str(params["pg_sslrootcert"])
        port, db = self._server(params)
        host = quote(str(params["pg_host"]), safe="")
        return f"postgresql://{auth}{host}:{port}/{quote(db, safe='')}?{urlencode(query)}"

    @staticmethod
    def _server(params: dict[str, Any]) -> tuple[int, str]:
        """(port, database) of the settings, with libpq's defaults."""
        return int(params.get("pg_port") or 5432), str(params.get("pg_db") or "postgres")

    def location(self, dataset: Dataset) -> str:
        params = self.settings(dataset)
        port, db = self._server(params)
        return f"{params['pg_host']}:{port}/{db}.{self.schema(dataset)}.{dataset.name}"

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
        """Nothing to do before a write, and no connection spent on it.

        A killed refresh is rolled back by the server, so it leaves no staging table; a staging table
        left by anything else is dropped by the next full refresh's own transaction, before it loads
        (:meth:`replace`); an append stages in a temporary table, which ends with its session.
        """

    def inspect_live(self, dataset: Dataset, *, want_watermark: bool, want_rows: bool = True) -> LiveState:
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
            if not want_rows:
                return state
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

    def _stats(
        self, cursor: Any, dataset: Dataset, qualified: str, total: int | None = None
    ) -> tuple[int, str | None]:
        """Rows and watermark of the table; ``total`` when known (a full refresh ingested exactly that)."""
        if total is None:
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
            evicted = evict_and_index(sql, dataset, staged, columns, index_suffix=STAGED_INDEX_SUFFIX)
            # The swap: the live table's lock is taken here and released by the commit below.
            cursor.execute(f"DROP TABLE IF EXISTS {schema}.{table}")
            cursor.execute(f"ALTER TABLE {staged} RENAME TO {table}")
            indexes.rename_staged(sql, dataset, schema, STAGED_INDEX_SUFFIX)
            self._record(cursor, f"{schema}.{table}", stream.source_columns)
            # COPY put exactly the streamed rows into the new table, less what retention_sql evicted:
            # no count(*) scan of it.
            total, watermark = self._stats(cursor, dataset, f"{schema}.{table}", stream.rows - evicted)
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
        params = self.settings(dataset)
        port, db = self._server(params)
        return f"postgres://{params['pg_host']}:{port}", f"{db}.{self.schema(dataset)}.{dataset.name}"

    def classify(self, err: Exception, dataset: str, doing: str) -> RefreshError | None:
        if not isinstance(err, adbc_driver_manager.Error):
            return None
        sqlstate = str(getattr(err, "sqlstate", "") or "")
        message = f"Dataset {dataset}: {doing} in PostgreSQL failed: {err}"
        if not sqlstate and any(text in str(err) for text in TERMINAL_CONNECT_MESSAGES):
            return TerminalRefreshError(
                message + f" Check the dataset's pg_* params (or its {CONN_ID_PARAM} connection).",
                dataset=dataset,
            )
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
