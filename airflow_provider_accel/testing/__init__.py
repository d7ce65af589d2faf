"""Run real Airflow processes with this provider on one machine.

Used by the project's end-to-end tests and its benchmarks, and usable for your own: start an
api-server, scheduler, dag-processor and triggerer on a temporary ``AIRFLOW_HOME`` (SQLite metadata
DB, LocalExecutor, the simple auth manager) and talk to them over HTTP.
"""

from __future__ import annotations

from airflow_provider_accel.testing.local import LocalAirflow, local_airflow_env, prepare_home
from airflow_provider_accel.testing.processes import (
    AIRFLOW_BIN,
    free_port,
    log_tail,
    start_airflow,
    stop_process_groups,
    wait_healthy,
)

__all__ = [
    "AIRFLOW_BIN",
    "LocalAirflow",
    "free_port",
    "local_airflow_env",
    "log_tail",
    "prepare_home",
    "start_airflow",
    "stop_process_groups",
    "wait_healthy",
]
