"""Turn a spicepod into Airflow DAGs: one refresh DAG per accelerated dataset.

``accelerate_<name>`` refreshes the dataset on its ``refresh_check_interval`` or ``refresh_cron``
(neither: one initial load, then on demand only), one run at a time, and offers a typed trigger form
for on-demand refreshes. A dataset with retention gets ``accelerate_<name>__retention`` on its
``retention_check_interval``. Both write through the file's single-writer lock.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

import pendulum
from airflow.sdk import DAG, Param, get_parsing_context

from airflow_provider_accel.accelerator.pool import POOL_NAME
from airflow_provider_accel.exceptions import SpicepodError
from airflow_provider_accel.operators.refresh import (
    AccelerationRefreshOperator,
    AccelerationRetentionOperator,
)
from airflow_provider_accel.operators.retry import retries_for
from airflow_provider_accel.plugin import param_formats
from airflow_provider_accel.spicepod import fields
from airflow_provider_accel.spicepod.durations import format_duration
from airflow_provider_accel.spicepod.model import INITIAL_LOAD_ONLY, dag_id_for
from airflow_provider_accel.spicepod.store import current_spicepod

if TYPE_CHECKING:
    from airflow_provider_accel.spicepod.model import Dataset, Spicepod

log = logging.getLogger(__name__)

START_DATE = pendulum.datetime(2024, 1, 1, tz="UTC")
RETENTION_SUFFIX = "__retention"
REFRESH_TASK_ID = "refresh"
RETENTION_TASK_ID = "retention"
#: The trigger form's JSON-schema dialect (why draft 7: see plugin.param_formats).
FORM_SCHEMA_DIALECT = param_formats.FORM_SCHEMA_DIALECT


def retention_dag_id_for(dataset_name: str) -> str:
    return dag_id_for(dataset_name) + RETENTION_SUFFIX


def trigger_params(dataset: Dataset) -> dict[str, Param]:
    """The typed trigger form of a dataset's DAG (Spice's ``RefreshOverrides``), from the declarations."""
    acceleration = dataset.acceleration
    assert acceleration is not None
    params: dict[str, Param] = {}
    for field in fields.on_demand_fields():
        spec = fields.on_demand(field)
        schema: dict[str, Any] = {"$schema": FORM_SCHEMA_DIALECT}
        schema["type"] = "string" if spec.form_enum else ["null", "string"]
        if spec.form_enum:
            schema["enum"] = list(spec.form_enum)
        if spec.form_format:
            # Checked by the project's override validator (see plugin.param_formats).
            schema["format"] = spec.form_format.format(dataset=dataset.name)
        params[field.key] = Param(
            fields.form_default(field, acceleration),
            title=spec.title,
            description=spec.form_help.format(dataset=dataset.name),
            **schema,
        )
    return params


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


def dataset_for_dag_id(spicepod: Spicepod, dag_id: str) -> Dataset | None:
    """The accelerated dataset whose refresh or retention DAG is ``dag_id`` (None: no such DAG here)."""
    for dataset in spicepod.accelerated_datasets:
        if dag_id in (dag_id_for(dataset.name), retention_dag_id_for(dataset.name)):
            return dataset
    return None


def build_dags(spicepod: Spicepod, only_dag_id: str | None = None) -> dict[str, DAG]:
    """Every DAG of the spicepod, by dag_id. Datasets without acceleration get none.

    ``only_dag_id``: build just the DAG(s) of the dataset owning that DAG id (all of them when no
    dataset does, so a stale id still gets Airflow's own "DAG not found" against the full file).
    """
    datasets: tuple[Dataset, ...] = spicepod.accelerated_datasets
    if only_dag_id is not None:
        # DAG ids are unique per dataset: the loader refuses two datasets mapping to one DAG id.
        owner = dataset_for_dag_id(spicepod, only_dag_id)
        if owner is not None:
            datasets = (owner,)
    # The trigger forms' refresh_sql/jitter formats run the project's validator wherever the DAGs
    # are built (dag-processor, workers, dag.test), not only in the api-server that loads the plugin.
    # They are registered once the DAGs are built: every ``FormatChecker()`` (one per Param checked
    # while a DAG is built) copies every registered format, so registering a 1,000-dataset pod's
    # formats first made the build quadratic. The forms' defaults checked during the build are the
    # declared values the loader has already validated with the same validator.
    dags = _build(datasets, spicepod)
    param_formats.register(d.name for d in datasets)
    return dags


def _build(datasets: tuple[Dataset, ...], spicepod: Spicepod) -> dict[str, DAG]:
    dags: dict[str, DAG] = {}
    owners: dict[str, str] = {}
    for dataset in datasets:
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


def log_spicepod(spicepod: Spicepod) -> None:
    """Say in the DAG file's log what gets no DAG and why, and what is served as an initial load only."""
    for error in spicepod.dataset_errors:
        log.warning("Dataset %s gets no DAG (status Error): %s", error.name, error.reason)
    for dataset in spicepod.accelerated_datasets:
        assert dataset.acceleration is not None
        why = INITIAL_LOAD_ONLY.get(dataset.acceleration.refresh_mode)
        if why is not None:
            log.info(
                "Dataset %s: refresh_mode %s is served as an initial load only (later runs skip): %s. "
                "Use refresh_mode full or append to keep it fresh.",
                dataset.name,
                dataset.acceleration.refresh_mode.value,
                why,
            )


def load_dags() -> dict[str, DAG]:
    """The DAGs of the configured spicepod (``[accel] spicepod_path``); errors propagate to Airflow.

    A dataset that cannot be served gets no DAG and a warning here (with ``[accel] strict_spicepod``
    it is an import error of the DAG file instead).

    When Airflow parses the file to run one task (its task runner sets the parsing context's
    ``dag_id``), only that dataset's DAGs are built: a refresh task of a 1,000-dataset pod does not
    pay for the other 999. The dag-processor sets no context and gets every DAG.
    """
    spicepod = current_spicepod()
    only_dag_id = get_parsing_context().dag_id
    if only_dag_id is None:
        log_spicepod(spicepod)
    return build_dags(spicepod, only_dag_id=only_dag_id)
