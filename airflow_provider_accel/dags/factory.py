"""Turn a spicepod into Airflow DAGs: one refresh DAG per accelerated dataset.

``accelerate_<name>`` refreshes the dataset on its ``refresh_check_interval`` or ``refresh_cron``
(neither: one initial load, then on demand only), one run at a time, and offers a typed trigger form
for on-demand refreshes. A dataset with retention gets ``accelerate_<name>__retention`` on its
``retention_check_interval``. Both write through the file's single-writer lock.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import pendulum
from airflow.sdk import DAG, Param

from airflow_provider_accel.accelerator.pool import POOL_NAME
from airflow_provider_accel.exceptions import SpicepodError
from airflow_provider_accel.operators.refresh import (
    AccelerationRefreshOperator,
    AccelerationRetentionOperator,
    current_spicepod,
)
from airflow_provider_accel.operators.retry import retries_for
from airflow_provider_accel.plugin import param_formats
from airflow_provider_accel.plugin.param_formats import DURATION_FORMAT, refresh_sql_format
from airflow_provider_accel.spicepod.durations import format_duration
from airflow_provider_accel.spicepod.model import ON_DEMAND_MODES, dag_id_for

if TYPE_CHECKING:
    from airflow_provider_accel.spicepod.model import Dataset, Spicepod

START_DATE = pendulum.datetime(2024, 1, 1, tz="UTC")
RETENTION_SUFFIX = "__retention"
REFRESH_TASK_ID = "refresh"
RETENTION_TASK_ID = "retention"


def retention_dag_id_for(dataset_name: str) -> str:
    return dag_id_for(dataset_name) + RETENTION_SUFFIX


def trigger_params(dataset: Dataset) -> dict[str, Param]:
    """The typed trigger form of a dataset's DAG (Spice's ``RefreshOverrides``)."""
    acceleration = dataset.acceleration
    assert acceleration is not None
    configured = acceleration.refresh_mode
    modes = [m.value for m in ON_DEMAND_MODES]
    return {
        "refresh_mode": Param(
            configured.value if configured in ON_DEMAND_MODES else "full",
            type="string",
            enum=modes,
            title="Refresh mode",
            description="full replaces the accelerated table; append adds rows newer than the "
            "watermark (max of the time column) minus refresh_append_overlap.",
        ),
        "refresh_sql": Param(
            None,
            type=["null", "string"],
            # Checked by the project's refresh_sql validator in the api-server (see param_formats).
            format=refresh_sql_format(dataset.name),
            title="Refresh SQL",
            description=f"Optional filter for this run only, e.g. SELECT * FROM {dataset.name} WHERE ... "
            "Only column lists, WHERE and LIMIT are allowed. Empty keeps the dataset's refresh_sql.",
        ),
        "refresh_jitter_max": Param(
            None,
            type=["null", "string"],
            format=DURATION_FORMAT,
            title="Jitter max",
            description="Optional maximum random delay before this refresh starts, e.g. 10s or 1m.",
        ),
    }


def _schedule(dataset: Dataset) -> Any:
    acceleration = dataset.acceleration
    assert acceleration is not None
    if acceleration.refresh_cron:
        return acceleration.refresh_cron
    if acceleration.refresh_check_interval is not None:
        return acceleration.refresh_check_interval
    return "@once"  # load once, then on demand only


def _doc(dataset: Dataset) -> str:
    acceleration = dataset.acceleration
    assert acceleration is not None
    lines = [
        f"### Accelerated dataset `{dataset.name}`",
        "",
        dataset.description or "",
        "",
        f"* source: `{dataset.from_}`",
        f"* refresh mode: `{acceleration.refresh_mode.value}`",
    ]
    if acceleration.refresh_check_interval is not None:
        lines.append(f"* refresh every `{format_duration(acceleration.refresh_check_interval)}`")
    if acceleration.refresh_cron:
        lines.append(f"* refresh on cron `{acceleration.refresh_cron}`")
    if acceleration.refresh_sql:
        lines.append(f"* refresh_sql: `{acceleration.refresh_sql}`")
    lines.append("")
    lines.append(
        "Trigger with overrides from the form, or through Spice's API: "
        f"`POST /v1/datasets/{dataset.name}/acceleration/refresh`."
    )
    return "\n".join(lines)


def build_dataset_dags(dataset: Dataset, spicepod: Spicepod) -> list[DAG]:
    """The DAG(s) of one accelerated dataset."""
    acceleration = dataset.acceleration
    assert acceleration is not None
    tags = ["accel", f"spicepod:{spicepod.name}", f"mode:{acceleration.refresh_mode.value}"]
    common: dict[str, Any] = {
        "dataset_name": dataset.name,
        "spicepod_path": spicepod.path,
        "retries": retries_for(acceleration.refresh_retry_enabled, acceleration.refresh_retry_max_attempts),
        "retry_delay": dt.timedelta(seconds=1),
        "pool": POOL_NAME,  # runtime.dataset_load_parallelism (accelerator/pool.py)
    }
    dags = []
    with DAG(
        dag_id=dag_id_for(dataset.name),
        schedule=_schedule(dataset),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        is_paused_upon_creation=False,
        tags=tags,
        params=trigger_params(dataset),
        doc_md=_doc(dataset),
        description=(dataset.description or f"Accelerate {dataset.name} from {dataset.from_}")[:200],
    ) as refresh_dag:
        AccelerationRefreshOperator(task_id=REFRESH_TASK_ID, **common)
    dags.append(refresh_dag)

    if acceleration.retention_check_enabled:
        with DAG(
            dag_id=retention_dag_id_for(dataset.name),
            schedule=acceleration.retention_check_interval or dt.timedelta(hours=1),
            start_date=START_DATE,
            catchup=False,
            max_active_runs=1,
            is_paused_upon_creation=False,
            tags=[*tags, "retention"],
            description=f"Retention of accelerated dataset {dataset.name}",
        ) as retention_dag:
            AccelerationRetentionOperator(task_id=RETENTION_TASK_ID, **common)
        dags.append(retention_dag)
    return dags


def build_dags(spicepod: Spicepod) -> dict[str, DAG]:
    """Every DAG of the spicepod, by dag_id. Datasets without acceleration get none."""
    # The trigger forms' refresh_sql/jitter formats run the project's validator wherever the DAGs
    # are built (dag-processor, workers, dag.test), not only in the api-server that loads the plugin.
    param_formats.register(d.name for d in spicepod.accelerated_datasets)
    dags: dict[str, DAG] = {}
    owners: dict[str, str] = {}
    for dataset in spicepod.accelerated_datasets:
        for dag in build_dataset_dags(dataset, spicepod):
            if dag.dag_id in dags:
                raise SpicepodError(
                    f"Datasets {owners[dag.dag_id]} and {dataset.name} both map to DAG id {dag.dag_id}; "
                    "rename one of them.",
                    dataset=dataset.name,
                    field="name",
                )
            dags[dag.dag_id] = dag
            owners[dag.dag_id] = dataset.name
    return dags


def load_dags() -> dict[str, DAG]:
    """The DAGs of the configured spicepod (``[accel] spicepod_path``); errors propagate to Airflow."""
    return build_dags(current_spicepod())
