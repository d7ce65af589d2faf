"""OpenLineage for refreshes: the source as input, the accelerated table as output, with facets.

Imported only by :meth:`AccelerationRefreshOperator.get_openlineage_facets_on_complete` (and
``_on_failure``), i.e. only where the OpenLineage provider is installed and enabled (extra
``[openlineage]``); the DAG file never imports it.

Dataset names follow OpenLineage's naming spec: ``postgres://host:port`` + ``db.schema.table``,
``mysql://host:port`` + ``db.table``, ``s3://bucket`` + key, ``file`` + absolute path,
``http(s)://host:port`` + path. The accelerated table is ``duckdb://<absolute file path>`` +
``main.<table>``: the DuckDB file plays the server, its default schema ``main`` holds the table.
The provider's asset ``accel://datasets/<name>`` converts to that same dataset
(:func:`convert_asset_to_openlineage`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import attr
from airflow.providers.common.compat.openlineage.facet import (
    Dataset as OpenLineageDataset,
)
from airflow.providers.common.compat.openlineage.facet import (
    OutputDataset,
    OutputStatisticsOutputDatasetFacet,
    RunFacet,
    SchemaDatasetFacet,
    SchemaDatasetFacetFields,
    SQLJobFacet,
)
from airflow.providers.openlineage.extractors import OperatorLineage

from airflow_provider_accel.accelerator.layout import dataset_file

if TYPE_CHECKING:
    from airflow_provider_accel.accelerator.result import RefreshResult
    from airflow_provider_accel.spicepod.model import Dataset

log = logging.getLogger(__name__)

ACCEL_SCHEME = "accel"
DUCKDB_SCHEMA = "main"


@attr.define
class AccelerationRefreshRunFacet(RunFacet):
    """What this refresh did: its mode, the time column and the watermark reached (append)."""

    mode: str
    time_column: str | None = None
    watermark: str | None = None
    total_rows: int | None = None

    @staticmethod
    def _get_schema() -> str:
        return "https://github.com/airflow-provider-accel/airflow-provider-accel/blob/main/docs/lineage.md#accelerationrefresh"


def _split_table(ref: str, default_schema: str) -> tuple[str, str]:
    parts = [p.strip('"`') for p in ref.split(".")]
    if len(parts) >= 2:
        return parts[-2], parts[-1]
    return default_schema, parts[0]


def _postgres(dataset: Dataset) -> tuple[str, str]:
    from airflow_provider_accel.sources.postgres import PostgresSource

    target = PostgresSource(dataset).target()  # resolves pg_* params, secrets and postgres_conn_id
    database = target.safe.split("/", 1)[1] if "/" in target.safe else ""
    schema, table = _split_table(dataset.from_.split(":", 1)[1], "public")
    return f"postgres://{target.host or 'localhost'}:{target.port}", f"{database}.{schema}.{table}"


def _mysql(dataset: Dataset) -> tuple[str, str]:
    from airflow_provider_accel.sources._common import resolve_params

    params = resolve_params(dataset)
    host = str(params.get("mysql_host") or "localhost")
    port = str(params.get("mysql_tcp_port") or 3306)
    ref = dataset.from_.split(":", 1)[1]
    database, table = _split_table(ref, str(params.get("mysql_db") or ""))
    return f"mysql://{host}:{port}", f"{database}.{table}"


def source_naming(dataset: Dataset) -> tuple[str, str]:
    """``(namespace, name)`` of the dataset's source under OpenLineage's naming spec."""
    from_ = dataset.from_
    scheme = from_.split(":", 1)[0].lower() if ":" in from_ else ""
    if scheme in ("postgres", "postgresql"):
        return _postgres(dataset)
    if scheme == "mysql":
        return _mysql(dataset)
    if scheme in ("s3", "s3a", "gs", "gcs", "abfs", "abfss", "az"):
        parts = urlsplit(from_)
        return f"{'gs' if scheme == 'gcs' else scheme}://{parts.netloc}", parts.path.lstrip("/") or "/"
    if scheme in ("http", "https"):
        parts = urlsplit(from_)
        port = parts.port or (443 if scheme == "https" else 80)
        return f"{scheme}://{parts.hostname}:{port}", parts.path or "/"
    if scheme in ("file", "sqlite", "duckdb") or not scheme:
        path = from_.split(":", 1)[1] if scheme else from_
        if path.startswith("//"):
            path = urlsplit(from_).path
        resolved = str(Path(os.path.expanduser(path)).resolve())
        if scheme in ("sqlite", "duckdb"):
            return f"{scheme}://{resolved}", "source"
        return "file", resolved
    # Another Airflow SQL connection (``<conn_type>:...``): the connection type names the system.
    return scheme, from_.split(":", 1)[1]


def accelerated_naming(dataset: Dataset, data_dir: str | os.PathLike[str] | None = None) -> tuple[str, str]:
    """``(namespace, name)`` of the accelerated table, per engine.

    DuckDB: its file and ``main.<table>``; SQLite: ``sqlite://<file>`` and ``main.<table>``;
    PostgreSQL: ``postgres://host:port`` and ``db.schema.table`` (OpenLineage's naming).
    """
    from airflow_provider_accel.accelerator.engines import arrow_hook_for, engine_of
    from airflow_provider_accel.spicepod.model import Engine

    if engine_of(dataset) is not Engine.DUCKDB:
        return arrow_hook_for(dataset, data_dir=data_dir).naming(dataset)
    path = dataset_file(dataset, data_dir).resolve()
    return f"duckdb://{path}", f"{DUCKDB_SCHEMA}.{dataset.name}"


def _schema_facet(path: str, table: str) -> SchemaDatasetFacet | None:
    from airflow_provider_accel.accelerator.reader import connect_reader

    try:
        con = connect_reader(path)
    except Exception as err:  # the lineage must never fail the refresh
        log.warning("No schema facet for %s: %s", table, err)
        return None
    try:
        rows = con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            [DUCKDB_SCHEMA, table],
        ).fetchall()
    finally:
        con.close()
    return SchemaDatasetFacet(fields=[SchemaDatasetFacetFields(name=n, type=t) for n, t in rows])


def _engine_schema_facet(
    dataset: Dataset, data_dir: str | os.PathLike[str] | None
) -> SchemaDatasetFacet | None:
    """The schema facet of a dataset on SQLite or PostgreSQL, read through its hook."""
    from airflow_provider_accel.accelerator.engines import arrow_hook_for

    try:
        live = arrow_hook_for(dataset, data_dir=data_dir).inspect_live(dataset, want_watermark=False)
    except Exception as err:  # the lineage must never fail the refresh
        log.warning("No schema facet for %s: %s", dataset.name, err)
        return None
    return SchemaDatasetFacet(fields=[SchemaDatasetFacetFields(name=n, type=t) for n, t in live.columns])


def _input(dataset: Dataset) -> OpenLineageDataset | None:
    try:
        namespace, name = source_naming(dataset)
    except Exception as err:  # e.g. a secret not resolvable here: report the output anyway
        log.warning("Dataset %s: no OpenLineage input for its source: %s", dataset.name, err)
        return None
    return OpenLineageDataset(namespace=namespace, name=name)


def _job_facets(refresh_sql: str | None) -> dict[str, Any]:
    return {"sql": SQLJobFacet(query=refresh_sql)} if refresh_sql else {}


def lineage_on_complete(
    dataset: Dataset, result: RefreshResult, data_dir: str | os.PathLike[str] | None = None
) -> OperatorLineage[Any, Any]:
    """The lineage of a successful refresh."""
    namespace, name = accelerated_naming(dataset, data_dir)
    facets: dict[str, Any] = {}
    from airflow_provider_accel.accelerator.engines import engine_of
    from airflow_provider_accel.spicepod.model import Engine

    if engine_of(dataset) is Engine.DUCKDB:
        schema = _schema_facet(result.path, dataset.name)
    else:
        schema = _engine_schema_facet(dataset, data_dir)
    if schema is not None:
        facets["schema"] = schema
    output = OutputDataset(
        namespace=namespace,
        name=name,
        facets=facets,
        outputFacets={
            "outputStatistics": OutputStatisticsOutputDatasetFacet(rowCount=result.rows, size=result.bytes)
        },
    )
    run_facet = AccelerationRefreshRunFacet(
        mode=result.mode,
        time_column=dataset.time_column,
        watermark=result.watermark if result.mode == "append" else None,
        total_rows=result.total_rows,
    )
    source = _input(dataset)
    return OperatorLineage(
        inputs=[source] if source is not None else [],
        outputs=[output],
        run_facets={"accelerationRefresh": run_facet},
        job_facets=_job_facets(result.refresh_sql),
    )


def lineage_on_failure(
    dataset: Dataset, refresh_sql: str | None, data_dir: str | os.PathLike[str] | None = None
) -> OperatorLineage[Any, Any]:
    """The lineage of a failed refresh: what it read and meant to write (the error facet is the
    OpenLineage listener's ``errorMessage``, added from the task's exception)."""
    namespace, name = accelerated_naming(dataset, data_dir)
    source = _input(dataset)
    return OperatorLineage(
        inputs=[source] if source is not None else [],
        outputs=[OpenLineageDataset(namespace=namespace, name=name)],
        job_facets=_job_facets(refresh_sql),
    )


def convert_asset_to_openlineage(asset: Any, lineage_context: Any) -> OpenLineageDataset:
    """``accel://datasets/<name>`` as the OpenLineage dataset of its accelerated table."""
    from airflow_provider_accel.spicepod.store import current_spicepod

    name = urlsplit(asset.uri).path.strip("/")
    try:
        dataset = current_spicepod().dataset(name)
    except Exception:
        dataset = None
    if dataset is None or not dataset.accelerated:
        return OpenLineageDataset(namespace=f"{ACCEL_SCHEME}://datasets", name=name)
    namespace, table = accelerated_naming(dataset)
    return OpenLineageDataset(namespace=namespace, name=table)
