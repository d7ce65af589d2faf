"""A thousand datasets: the DAG file's parse time, and ``GET /v1/datasets?status=true``, at 1,000.

Run as a child process (``python -m bench.many_datasets '<json args>'``) with the environment of
:func:`bench.stack.airflow_env`, so the parse and the api-server see a fresh interpreter with no
spicepod parsed yet; prints one JSON document as its last line.

* ``parse``: the DAG file (``dags/accelerated_datasets.py``) executed as the dag-processor runs it,
  with ``airflow.sdk`` and the provider imported first (warm: imports done, file in the page cache),
  on a spicepod of ``datasets`` datasets. Each repetition forgets the parsed spicepod and the
  trigger forms' per-dataset formats, as a new dag-processor child has neither. Also timed: the
  same file as one refresh task parses it (Airflow's parsing context names the DAG), which builds
  one DAG.
* ``status``: the real api-server app (``airflow.api_fastapi.app.create_app``) called over ASGI in
  process, as tests/api_app.py builds it, on the same spicepod with every DAG synced to the metadata
  DB.
"""

from __future__ import annotations

import json
import os
import runpy
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
DAG_FILE = REPO_ROOT / "dags" / "accelerated_datasets.py"

#: A spread of what real pods declare: schedules, crons, retention, refresh_sql, appends.
_SHAPES = (
    """\
  - from: file:{src}/ds_{i:04d}/
    name: ds_{i:04d}
    description: dataset {i} of the thousand
    params:
      file_format: parquet
    acceleration:
      enabled: true
      refresh_mode: full
      refresh_check_interval: 1h
""",
    """\
  - from: file:{src}/ds_{i:04d}/
    name: ds_{i:04d}
    time_column: ts
    params:
      file_format: parquet
    acceleration:
      enabled: true
      refresh_mode: append
      refresh_cron: "*/15 * * * *"
      retention_check_enabled: true
      retention_period: 7d
      retention_check_interval: 1h
""",
    """\
  - from: file:{src}/ds_{i:04d}/
    name: ds_{i:04d}
    params:
      file_format: parquet
    acceleration:
      enabled: true
      refresh_sql: SELECT * FROM ds_{i:04d} WHERE v > 0
""",
)


def spicepod_yaml(datasets: int, src: str) -> str:
    """A valid spicepod of ``datasets`` accelerated datasets (deterministic)."""
    body = "".join(_SHAPES[i % len(_SHAPES)].format(i=i, src=src) for i in range(datasets))
    return f"version: v1\nkind: Spicepod\nname: thousand\ndatasets:\n{body}"


def _forget_parsed() -> None:
    """What a new dag-processor child has not got yet: the parsed spicepod, the forms' formats."""
    from airflow_provider_accel.plugin.param_formats import unregister_dataset_formats
    from airflow_provider_accel.spicepod.store import clear_cache

    clear_cache()
    unregister_dataset_formats()


def time_parse(reps: int, dag_id: str | None = None) -> dict[str, Any]:
    """Seconds to run the DAG file ``reps`` times, each with no spicepod parsed yet in the process."""
    import airflow.sdk  # noqa: F401  (the dag-processor has it imported before it runs a file)

    import airflow_provider_accel.dags.factory  # noqa: F401

    if dag_id:
        os.environ["_AIRFLOW_PARSING_CONTEXT_DAG_ID"] = dag_id
        os.environ["_AIRFLOW_PARSING_CONTEXT_TASK_ID"] = "refresh"
    try:
        runpy.run_path(str(DAG_FILE))  # first run: lazily imported modules, untimed
        samples, cpu, dags = [], [], 0
        for _ in range(reps):
            _forget_parsed()
            started, cpu_started = time.perf_counter(), time.process_time()
            namespace = runpy.run_path(str(DAG_FILE))
            samples.append(time.perf_counter() - started)
            cpu.append(time.process_time() - cpu_started)
            dags = sum(1 for v in namespace.values() if type(v).__name__ == "DAG")
    finally:
        os.environ.pop("_AIRFLOW_PARSING_CONTEXT_DAG_ID", None)
        os.environ.pop("_AIRFLOW_PARSING_CONTEXT_TASK_ID", None)
    return {
        "median_s": round(statistics.median(samples), 4),
        "samples_s": samples,
        # CPU seconds of this process: on a loaded machine the wall-clock figure is mostly waiting.
        "cpu_median_s": round(statistics.median(cpu), 4),
        "dags": dags,
    }


def time_status(requests: int) -> dict[str, Any]:
    """p50 of ``GET /v1/datasets?status=true`` on the in-process api-server app, every DAG synced."""
    from bench.stack import fresh_metadata_db

    home = Path(os.environ["AIRFLOW_HOME"])
    fresh_metadata_db(home)
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    dags = home / "dags"
    DagBundlesManager().sync_bundles_to_db()  # type: ignore[no-untyped-call]
    bag = DagBag(dag_folder=dags, bundle_path=dags, bundle_name="dags-folder")
    if bag.import_errors:
        raise RuntimeError(f"DAG import errors: {bag.import_errors}")
    sync_bag_to_db(bag, "dags-folder", None)

    from airflow.api_fastapi.app import create_app, get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from fastapi.testclient import TestClient

    from bench.endpoint import summary

    with TestClient(create_app(), raise_server_exceptions=False) as client:
        token = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="admin", role="admin"))
        headers = {"Authorization": f"Bearer {token}"}
        listed = 0
        for _ in range(3):  # warm-up: imports, the spicepod's first parse, caches
            response = client.get("/v1/datasets", params={"status": "true"}, headers=headers)
            if response.status_code != 200:
                raise RuntimeError(f"GET /v1/datasets answered {response.status_code}: {response.text[:500]}")
            listed = len(response.json())
        seconds = []
        for _ in range(requests):
            started = time.perf_counter()
            response = client.get("/v1/datasets", params={"status": "true"}, headers=headers)
            seconds.append(time.perf_counter() - started)
            if response.status_code != 200:
                raise RuntimeError(f"GET /v1/datasets answered {response.status_code}")
    return {**summary(seconds), "datasets_listed": listed}


def run(args: dict[str, Any]) -> dict[str, Any]:
    from bench.stack import prepare

    home = Path(os.environ["AIRFLOW_HOME"])
    prepare(home, spicepod_yaml(args["datasets"], str(home / "src")))
    first = "accelerate_ds_0001"
    result: dict[str, Any] = {
        "datasets": args["datasets"],
        "parse_all": time_parse(args["parse_reps"]),
        "parse_one_task": time_parse(args["parse_reps"], dag_id=first),
    }
    if args.get("status_requests"):
        result["status"] = time_status(args["status_requests"])
    return result


if __name__ == "__main__":
    print(json.dumps(run(json.loads(sys.argv[1]))))
