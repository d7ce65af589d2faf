"""One Airflow DAG per accelerated dataset of the configured spicepod.

The spicepod is ``[accel] spicepod_path`` (``AIRFLOW__ACCEL__SPICEPOD_PATH``). An invalid spicepod
raises here, so it shows as an import error of this file naming the problem, never as a silently
empty DAG list.
"""

from __future__ import annotations

from airflow_provider_accel.dags.factory import load_dags

globals().update(load_dags())
