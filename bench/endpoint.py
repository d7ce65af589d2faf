"""Endpoint latency and throughput, ours against Airflow's own trigger, and POST -> rows visible.

Run as a child process by the bench (``python -m bench.endpoint '<json args>'``), with the
environment of :func:`bench.stack.airflow_env`; prints one JSON document as its last line.

* ``ours``: ``POST /v1/datasets/bench_api/acceleration/refresh`` with a distinct ``refresh_sql`` each
  time (so each request creates a run, as Airflow's does; an identical queued request would join
  the queued run instead, measured apart as ``ours_join``).
* ``airflow``: ``POST /api/v2/dags/accelerate_bench_api/dagRuns`` with the same ``conf``.

Both go to the same api-server in the same run, one request of each in turn (order alternated). In
``stack`` mode the server is a real ``airflow api-server`` on loopback and the scheduler,
dag-processor and triggerer are stopped while the latency and throughput are measured, so that the
runs the requests create stay queued instead of loading the 2-core machine; the DAG is then paused
and they are started again. In
``inprocess`` mode (the CI smoke scale) the same api-server app is called in-process over ASGI,
without TCP.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

API_DATASET = "bench_api"
#: The processes that do not serve the API, stopped while it is measured.
BACKGROUND = ("scheduler", "dag-processor", "triggerer")
E2E_DATASET = "bench_e2e"

SPICEPOD = """\
version: v1
kind: Spicepod
name: bench
datasets:
  - from: file:{src}/api/
    name: bench_api
    params:
      file_format: parquet
    acceleration:
      enabled: true
      refresh_mode: full
  - from: file:{src}/e2e/
    name: bench_e2e
    params:
      file_format: parquet
    acceleration:
      enabled: true
      refresh_mode: full
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 0.5), 2),
        "p99_ms": round(percentile(ms, 0.99), 2),
        "mean_ms": round(statistics.fmean(ms), 2) if ms else float("nan"),
    }


def write_drop(directory: Path, index: int, rows: int) -> None:
    from airflow_provider_accel.demo import taxi

    directory.mkdir(parents=True, exist_ok=True)
    start = dt.datetime(2024, 1, 1) + dt.timedelta(days=index)
    taxi.write_parquet(directory / f"drop-{index:04d}.parquet", rows, seed=index, start=start)


def measure_endpoints(
    post: Callable[[str, str, dict[str, Any]], int], args: dict[str, Any]
) -> dict[str, Any]:
    """Latency (interleaved, one at a time) and throughput (``concurrency`` clients) of both endpoints."""
    dag_id = f"accelerate_{API_DATASET}"
    ours_url = f"/v1/datasets/{API_DATASET}/acceleration/refresh"
    airflow_url = f"/api/v2/dags/{dag_id}/dagRuns"
    counter = iter(range(1, 10**9))

    def ours() -> int:
        return post("ours", ours_url, {"refresh_sql": f"SELECT * FROM {API_DATASET} LIMIT {next(counter)}"})

    def airflow() -> int:
        conf = {"refresh_sql": f"SELECT * FROM {API_DATASET} LIMIT {next(counter)}"}
        return post("airflow", airflow_url, {"logical_date": None, "conf": conf})

    def ours_join() -> int:
        return post("ours_join", ours_url, {"refresh_sql": f"SELECT * FROM {API_DATASET} LIMIT 1"})

    calls = {"ours": ours, "airflow": airflow}
    errors: dict[str, dict[str, int]] = {"ours": {}, "airflow": {}, "ours_join": {}}
    ok: dict[str, int] = {"ours": 0, "airflow": 0}

    def timed(name: str, fn: Callable[[], int]) -> float:
        started = time.perf_counter()
        status = fn()
        elapsed = time.perf_counter() - started
        if status in (200, 201):
            ok[name] = ok.get(name, 0) + 1
        else:
            errors[name][str(status)] = errors[name].get(str(status), 0) + 1
        return elapsed

    for _ in range(3):  # warm-up: first requests import and cache
        for name, fn in calls.items():
            timed(name, fn)
    timed("ours_join", ours_join)
    samples: dict[str, list[float]] = {"ours": [], "airflow": [], "ours_join": []}
    for i in range(args["requests"]):
        order = ("ours", "airflow") if i % 2 == 0 else ("airflow", "ours")
        for name in order:
            samples[name].append(timed(name, calls[name]))
        if i % 3 == 0:
            samples["ours_join"].append(timed("ours_join", ours_join))

    # Throughput: successful requests per second with `concurrency` clients, two rounds each (ABBA).
    throughput: dict[str, float] = {}
    total = args["throughput_requests"]
    elapsed: dict[str, float] = {"ours": 0.0, "airflow": 0.0}
    before = dict(ok)
    with ThreadPoolExecutor(max_workers=args["concurrency"]) as pool:
        for name in ("ours", "airflow", "airflow", "ours"):
            started = time.perf_counter()
            list(pool.map(lambda _i, fn=calls[name], n=name: timed(n, fn), range(total // 2)))
            elapsed[name] += time.perf_counter() - started
    for name in elapsed:
        throughput[name] = round((ok[name] - before[name]) / elapsed[name], 2)
    return {
        "latency": {name: summary(values) for name, values in samples.items()},
        "throughput_rps": throughput,
        "concurrency": args["concurrency"],
        "errors": errors,
    }


# -- in-process -----------------------------------------------------------------------------------------


def run_inprocess(args: dict[str, Any]) -> dict[str, Any]:
    from bench.stack import prepare

    home = Path(os.environ["AIRFLOW_HOME"])
    src = home / "src"
    write_drop(src / "api", 0, 100)
    write_drop(src / "e2e", 0, 100)
    prepare(home, SPICEPOD.format(src=src))

    from bench.stack import fresh_metadata_db

    fresh_metadata_db(home)
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import update

    dags = home / "dags"
    DagBundlesManager().sync_bundles_to_db()  # type: ignore[no-untyped-call]  # Airflow's __init__ is unannotated
    bag = DagBag(dag_folder=dags, bundle_path=dags, bundle_name="dags-folder")
    if bag.import_errors:
        raise RuntimeError(f"DAG import errors: {bag.import_errors}")
    sync_bag_to_db(bag, "dags-folder", None)
    with create_session() as session:
        session.execute(update(DagModel).values(is_paused=False))

    from airflow.api_fastapi.app import create_app, get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from fastapi.testclient import TestClient

    app = create_app()
    with TestClient(app, raise_server_exceptions=False) as client:
        token = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="admin", role="admin"))
        headers = {"Authorization": f"Bearer {token}"}

        def post(_name: str, url: str, body: dict[str, Any]) -> int:
            status: int = client.post(url, json=body, headers=headers).status_code
            return status

        result = measure_endpoints(post, args)
    result["mode"] = "inprocess"
    return result


# -- real stack -----------------------------------------------------------------------------------------


def _ts(value: str | None) -> float | None:
    return dt.datetime.fromisoformat(value).timestamp() if value else None


def _count_rows(path: Path, table: str) -> int | None:
    import duckdb

    from airflow_provider_accel.accelerator.reader import is_lock_conflict

    if not path.exists():
        return None
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as err:
        if is_lock_conflict(err):
            return None
        raise
    try:
        return int(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])
    except duckdb.CatalogException:
        return None
    finally:
        con.close()


def _worker_parse_seconds(client: Any, dag_id: str, run_id: str, try_number: int) -> float:
    """The task's own parse of the DAG file (``dag_file_parse_ms`` in its log), 0 if not found."""
    import re

    try:
        response = client.get(
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/refresh/logs/{try_number}",
            params={"full_content": "true"},
            headers={"Accept": "application/json"},
        )
        match = re.search(r"dag_file_parse_ms\W+(\d+)", response.text)
        return int(match.group(1)) / 1000 if match else 0.0
    except Exception:
        return 0.0


def measure_e2e(stack: Any, src: Path, args: dict[str, Any]) -> dict[str, Any]:
    """POST -> the new rows visible in the DuckDB file, with the breakdown from the run's timestamps."""
    dag_id = f"accelerate_{E2E_DATASET}"
    path = stack.home / "accel" / f"{E2E_DATASET}.duckdb"
    rows_per_drop = args["e2e_rows"]
    samples: list[dict[str, float]] = []
    with stack.client() as client:
        for rep in range(args["e2e_reps"]):
            write_drop(src / "e2e", rep + 1, rows_per_drop)
            expected = (rep + 2) * rows_per_drop
            t0 = time.time()
            response = client.post(f"/v1/datasets/{E2E_DATASET}/acceleration/refresh")
            t_resp = time.time()
            if response.status_code != 201:
                raise RuntimeError(f"refresh POST answered {response.status_code}: {response.text}")
            run_id = response.json()["dag_run_id"]
            deadline = t0 + 300
            while (_count_rows(path, E2E_DATASET) or 0) != expected:
                if time.time() > deadline:
                    raise RuntimeError(f"rows not visible after 300s\n{stack.log_tail()}")
                time.sleep(0.02)
            t_visible = time.time()
            while True:
                status = client.get(f"/v1/datasets/{E2E_DATASET}/acceleration/refresh/{run_id}").json()
                if status["state"] in ("success", "failed"):
                    break
                time.sleep(0.2)
            ti = client.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/refresh").json()
            queued, started = _ts(ti.get("queued_when")), _ts(ti.get("start_date"))
            load = (status.get("duration_ms") or 0) / 1000
            parse = _worker_parse_seconds(client, dag_id, run_id, ti.get("try_number") or 1)
            rest = (t_visible - started - load - parse) if started else float("nan")
            sample = {
                "total_s": t_visible - t0,
                "api_s": t_resp - t0,
                "scheduling_s": (queued - t0) if queued else float("nan"),
                "task_start_s": (started - queued) if queued and started else float("nan"),
                "dag_parse_in_task_s": parse,
                "load_s": load,
                "task_other_s": rest,
            }
            samples.append(sample)
            print(f"  e2e rep {rep + 1}: " + ", ".join(f"{k}={v:.2f}" for k, v in sample.items()), flush=True)
    keys = samples[0].keys() if samples else ()
    return {
        "median_s": {k: round(statistics.median(s[k] for s in samples), 3) for k in keys},
        "samples": samples,
        "rows_per_drop": rows_per_drop,
    }


def run_stack(args: dict[str, Any]) -> dict[str, Any]:
    from bench.stack import STARTUP_TIMEOUT, BenchAirflow

    home = Path(args["home"])
    src = home / "src"
    write_drop(src / "api", 0, 100)
    write_drop(src / "e2e", 0, args["e2e_rows"])
    started = time.monotonic()
    stack = BenchAirflow.launch(home, SPICEPOD.format(src=src))
    try:
        startup_s = time.monotonic() - started
        for dataset in (API_DATASET, E2E_DATASET):
            stack.wait_dag_idle(f"accelerate_{dataset}")
        # Only the api-server runs while latency is measured: the runs the requests create stay
        # queued instead of loading the 2-core machine, and no other process competes for SQLite's
        # write lock (at hundreds of runs a second the triggerer's updates time out and it exits).
        for name in BACKGROUND:
            stack.stop_process(name)
        with stack.client(timeout=60) as client:

            def post(_name: str, url: str, body: dict[str, Any]) -> int:
                return client.post(url, json=body).status_code

            result = measure_endpoints(post, args)
            # Hundreds of queued runs: keep them from running once the scheduler is back.
            client.patch(f"/api/v2/dags/accelerate_{API_DATASET}", json={"is_paused": True})
        result["mode"] = "stack"
        result["stack_startup_s"] = round(startup_s, 1)
        if args["e2e_reps"]:
            for name in BACKGROUND:
                stack.start(name)
            stack.wait_healthy(STARTUP_TIMEOUT)
            result["e2e"] = measure_e2e(stack, src, args)
        return result
    finally:
        stack.stop()


if __name__ == "__main__":
    arguments = json.loads(sys.argv[1])
    out = run_stack(arguments) if arguments["mode"] == "stack" else run_inprocess(arguments)
    print(json.dumps(out))
