"""What a refresh task imports, imported once by the process its task processes are forked from.

Airflow's task runner forks each task process from an executor worker and then imports the task
runner, parses the DAG file and runs the operator: with this provider that means Airflow's Task
SDK and the DagBag it parses with (Airflow's models and serialization), DuckDB, PyArrow and the
provider's own modules, about 1 s of imports on every refresh (more on
a loaded machine). With LocalExecutor, Airflow 3.3 can start its workers from a ``forkserver`` that
imports modules up front; naming this module there makes every task process inherit them instead::

    [scheduler]
    mp_start_method = forkserver
    mp_forkserver_preload = airflow_provider_accel.preload

(``AIRFLOW__SCHEDULER__MP_START_METHOD``, ``AIRFLOW__SCHEDULER__MP_FORKSERVER_PRELOAD``; the README's
"On-demand latency" section has the measurements). Importing this module has no other effect: it
opens no connection, reads no spicepod and starts no thread.
"""

from __future__ import annotations

import duckdb  # noqa: F401
import pyarrow
import pyarrow.parquet  # noqa: F401
from airflow.dag_processing import dagbag  # noqa: F401  (the task runner parses the DAG file with it)
from airflow.dag_processing.bundles import manager  # noqa: F401
from airflow.executors import local_executor  # noqa: F401
from airflow.sdk.execution_time import supervisor, task_runner  # noqa: F401

from airflow_provider_accel.accelerator import engines, hook  # noqa: F401
from airflow_provider_accel.dags import factory  # noqa: F401
from airflow_provider_accel.operators import cancellation, lineage, metrics, refresh  # noqa: F401
from airflow_provider_accel.sources import file, registry  # noqa: F401
