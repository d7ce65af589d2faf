"""Spice's connectors as data: which ``from:`` forms exist, which this provider serves, with what extra.

Pure data and string matching, no driver imports: the spicepod loader and the API use it to report a
dataset that cannot be served (status ``Error``, with the reason) instead of building a DAG that can
only fail at its first run. :func:`airflow_provider_accel.sources.source_for` reads the same table.

Spice names a connector before a ``:`` (``postgres:public.t``) or, for some, a ``/``
(``spice.ai/org/app/datasets/t``); object stores and web sources are URLs (``s3://``, ``https://``).
A ``from:`` with none of these is a local path (Spice's ``file`` connector).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

#: The distribution name users install extras of.
DISTRIBUTION = "airflow-provider-accel"


@dataclass(frozen=True)
class Connector:
    """One of Spice's data connectors, and how (or whether) this provider serves it."""

    #: Spice's connector name, as written before ``:`` or ``/`` in ``from:``.
    name: str
    #: ``module:Class`` of the source that serves it here; ``None`` when it is not served.
    source: str | None = None
    #: URL schemes that also select it (``s3`` for ``s3://bucket/key``).
    schemes: tuple[str, ...] = ()
    #: The optional extra that installs its driver (``pip install 'airflow-provider-accel[<extra>]'``).
    extra: str | None = None
    #: A module whose presence proves the extra is installed (looked up, never imported).
    module: str | None = None

    @property
    def served(self) -> bool:
        return self.source is not None


_SOURCES = "airflow_provider_accel.sources"

#: Every connector Spice documents (its docs' data-connector pages and the runtime's connector
#: registry); the served ones name their source. The order is the match order of sources.
CONNECTORS: tuple[Connector, ...] = (
    Connector("s3", f"{_SOURCES}.object_store:ObjectStoreSource", schemes=("s3", "s3a")),
    Connector("https", f"{_SOURCES}.http:HttpSource", schemes=("https",)),
    Connector("http", f"{_SOURCES}.http:HttpSource", schemes=("http",)),
    Connector(
        "postgres",
        f"{_SOURCES}.postgres:PostgresSource",
        extra="postgres",
        module="adbc_driver_postgresql",
    ),
    Connector("mysql", f"{_SOURCES}.mysql:MySQLSource", extra="mysql", module="pymysql"),
    Connector("sqlite", f"{_SOURCES}.sqlite:SqliteSource"),
    Connector("duckdb", f"{_SOURCES}.duckdb_file:DuckDBFileSource"),
    Connector("delta_lake", f"{_SOURCES}.delta_lake:DeltaLakeSource", extra="delta", module="deltalake"),
    Connector("iceberg", f"{_SOURCES}.iceberg:IcebergSource", extra="iceberg", module="pyiceberg"),
    Connector(
        "flightsql",
        f"{_SOURCES}.flightsql:FlightSqlSource",
        extra="flightsql",
        module="adbc_driver_flightsql",
    ),
    Connector("odbc", f"{_SOURCES}.odbc:OdbcSource", extra="odbc", module="arrow_odbc"),
    # Not one of Spice's: any Airflow SQL connection (this provider's own form).
    Connector("airflow", f"{_SOURCES}.airflow_sql:AirflowSqlSource"),
    Connector("file", f"{_SOURCES}.file:FileSource", schemes=("file",)),
    # Spice connectors this provider does not serve (yet).
    Connector("abfs", schemes=("abfs", "abfss")),
    Connector("clickhouse"),
    Connector("databricks"),
    Connector("debezium"),
    Connector("dremio"),
    Connector("dynamodb"),
    Connector("elasticsearch"),
    Connector("ftp", schemes=("ftp",)),
    Connector("sftp", schemes=("sftp",)),
    Connector("gcs", schemes=("gs", "gcs")),
    Connector("git"),
    Connector("github"),
    Connector("glue"),
    Connector("graphql"),
    Connector("imap"),
    Connector("kafka"),
    Connector("localpod"),
    Connector("memory"),
    Connector("mongodb"),
    Connector("mssql"),
    Connector("oracle"),
    Connector("scylladb"),
    Connector("sharepoint"),
    Connector("smb", schemes=("smb",)),
    Connector("nfs", schemes=("nfs",)),
    Connector("snowflake"),
    Connector("spark"),
    Connector("spice.ai"),
    Connector("turso"),
)

_BY_NAME = {c.name: c for c in CONNECTORS}
_BY_SCHEME = {scheme: c for c in CONNECTORS for scheme in c.schemes}
_FILE = _BY_NAME["file"]


def connector_for(from_: str) -> Connector | None:
    """The connector ``from_`` names; the file connector for a plain path; ``None`` for an unknown one."""
    scheme, sep, _ = from_.partition("://")
    if sep and scheme.lower() in _BY_SCHEME:
        return _BY_SCHEME[scheme.lower()]
    head = from_.split("/", 1)[0]
    if ":" in head:
        return _BY_NAME.get(head.split(":", 1)[0])
    if "/" in from_ and head in _BY_NAME and not _BY_NAME[head].schemes:
        # Spice's "name/..." form (spice.ai/org/app/datasets/t), never a directory of that name here.
        return _BY_NAME[head]
    return _FILE


def served_names() -> list[str]:
    """The connectors this provider serves, sorted, for messages."""
    return sorted(c.name for c in CONNECTORS if c.served)


def missing_module(connector: Connector) -> str | None:
    """The module of the connector's extra when it is not installed, else ``None``."""
    if connector.module is None:
        return None
    try:
        found = importlib.util.find_spec(connector.module)
    except (ImportError, ValueError):  # a parent package missing, or a module without a spec
        found = None
    return connector.module if found is None else None


def unservable_reason(from_: str) -> str | None:
    """Why a dataset reading ``from_`` cannot be served here, or ``None`` when it can."""
    connector = connector_for(from_)
    served = ", ".join(served_names())
    if connector is None:
        return (
            f"'from: {from_}' does not name a connector Spice knows. Connectors served here: {served} "
            "(a local path needs no prefix)."
        )
    if not connector.served:
        return (
            f"'from: {from_}' uses Spice's {connector.name} connector, which this provider does not serve. "
            f"Connectors served here: {served}. Read this dataset with Spice itself, or land it where "
            "one of these reads it (for example Parquet files in S3)."
        )
    module = missing_module(connector)
    if module is not None:
        return (
            f"'from: {from_}' needs the {connector.name} connector's driver, which is not installed "
            f"(module {module!r} not found): pip install '{DISTRIBUTION}[{connector.extra}]'."
        )
    return None
