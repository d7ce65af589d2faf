"""Fifty datasets come due at once on a worker whose refresh pool has 4 slots (Spice #5669).

The real deployment (``airflow_stack``: scheduler + LocalExecutor, dag-processor, api-server) gets a
spicepod of 50 datasets with ``runtime.dataset_load_parallelism: 4``; each DAG's initial load is due
the moment the DAG file is parsed. The scheduler is restarted for this test with the executor's
``parallelism`` at 8, so that the pool, not the executor, is what holds refreshes back, and its start
sizes the pool from the spicepod (the provider's listener). Proven from the metadata DB and from the
processes, never from timings:

* at most 4 refresh tasks run at a time: the task instances' ``[start_date, end_date]`` intervals,
  swept, never overlap more than 4 deep; the pool's occupied slots, sampled, never exceed 4;
* all 50 succeed, and each file holds its source's rows;
* memory stays bounded: the summed RSS of the processes running a refresh (the scheduler's
  descendants titled as task processes), sampled, stays under 4 x (the per-refresh ``memory_limit``
  + a stated per-process overhead).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import e2e_stack
import pytest

from airflow_provider_accel.accelerator.pool import POOL_NAME
from airflow_provider_accel.accelerator.resources import MIB, memory_budget
from airflow_provider_accel.spicepod.loader import load_spicepod

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.processes]

DATASETS = 50
SLOTS = 4
ROWS = 200
#: Python, Airflow's task runner, DuckDB and pyarrow in one task process, beyond DuckDB's own limit
#: (the bench measures about 250 MiB for that baseline; bench/memory.py).
TASK_OVERHEAD_BYTES = 400 * MIB
#: Each task pays Airflow's task start-up (seconds on a loaded 2-core machine): 50 of them, 4 at a time.
TIMEOUT = 1500.0
TASK_TITLE = b"airflow worker -- "
EXECUTOR_WORKER_TITLE = b"airflow worker -- LocalExecutor"


def _spicepod(src: Path) -> str:
    lines = [
        "version: v1",
        "kind: Spicepod",
        "name: parallel",
        "runtime:",
        f"  dataset_load_parallelism: {SLOTS}",
    ]
    lines.append("datasets:")
    for i in range(DATASETS):
        lines += [
            f"  - from: file:{src}/par_{i:02d}.csv",
            f"    name: par_{i:02d}",
            "    params:",
            "      file_format: csv",
            "    acceleration:",
            "      enabled: true",
            "      refresh_mode: full",
        ]
    return "\n".join(lines) + "\n"


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = Path(f"/proc/{entry.name}/stat").read_text()
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _refresh_processes(scheduler_pid: int) -> dict[int, int]:
    """RSS (bytes) of each running task process among the scheduler's descendants.

    Airflow's task runner titles its process ``airflow worker -- <task instance id>``; the LocalExecutor's
    own workers (the supervisors) are ``airflow worker -- LocalExecutor: ...``. Every task of this
    spicepod is a refresh.
    """
    rss = {}
    for pid in _descendants(scheduler_pid):
        with contextlib.suppress(OSError):
            title = Path(f"/proc/{pid}/cmdline").read_bytes()
            if not title.startswith(TASK_TITLE) or title.startswith(EXECUTOR_WORKER_TITLE):
                continue
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss[pid] = int(line.split()[1]) * 1024
    return rss


def _max_overlap(intervals: list[tuple[str, str]]) -> int:
    """The most intervals open at one instant (an end before a start at the same instant)."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    depth = deepest = 0
    for _, step in events:
        depth += step
        deepest = max(deepest, depth)
    return deepest


def _restart_scheduler(stack: Any, parallelism: str) -> None:
    stack.stop_process("scheduler")
    stack.env["AIRFLOW__CORE__PARALLELISM"] = parallelism
    stack.start("scheduler")
    stack.wait_healthy(e2e_stack.STARTUP_TIMEOUT, ("scheduler",))


@pytest.fixture
def fifty_datasets(airflow_stack: Any) -> Iterator[Any]:
    src = airflow_stack.source_dir
    for i in range(DATASETS):
        rows = "".join(f"{j},{i * 1000 + j}\n" for j in range(ROWS))
        (src / f"par_{i:02d}.csv").write_text("id,v\n" + rows)
    original = airflow_stack.env["AIRFLOW__CORE__PARALLELISM"]
    airflow_stack.stop_process("scheduler")  # nothing is queued until the pool is sized
    airflow_stack.spicepod_path.write_text(_spicepod(src))
    try:
        _restart_scheduler(airflow_stack, str(2 * SLOTS))
        yield airflow_stack
    finally:
        airflow_stack.write_spicepod(e2e_stack.E2E_SPICEPOD)
        _restart_scheduler(airflow_stack, original)  # the pool back to the default spicepod's size


@pytest.mark.timeout(1800)
def test_fifty_due_at_once_run_four_at_a_time_within_memory(fifty_datasets: Any) -> None:
    """50 due at once with a pool of 4: at most 4 run together, all succeed, memory stays bounded."""
    stack = fifty_datasets
    dag_ids = [f"accelerate_par_{i:02d}" for i in range(DATASETS)]
    dataset = load_spicepod(stack.spicepod_path).datasets[0]  # what each refresh derives on this host
    limit = memory_budget({}, stack.data_dir, dataset=dataset, parallel_refreshes=SLOTS).memory_limit
    per_refresh = int(limit.removesuffix("MiB")) * MIB
    bound = SLOTS * (per_refresh + TASK_OVERHEAD_BYTES)
    scheduler_pid = stack.processes["scheduler"].pid
    samples: list[tuple[int, int, int]] = []  # (pool occupied slots, refresh processes, their RSS sum)
    stop = threading.Event()

    def sample() -> None:
        with stack.client() as client:
            while not stop.is_set():
                pool = client.get(f"/api/v2/pools/{POOL_NAME}")
                occupied = pool.json()["occupied_slots"] if pool.status_code == 200 else -1
                rss = _refresh_processes(scheduler_pid)
                samples.append((occupied, len(rss), sum(rss.values())))
                time.sleep(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        with stack.client() as client:
            pool = client.get(f"/api/v2/pools/{POOL_NAME}").json()
            assert pool["slots"] == SLOTS, pool  # sized from runtime.dataset_load_parallelism
            deadline = time.monotonic() + TIMEOUT
            while True:
                runs = client.post(
                    "/api/v2/dags/~/dagRuns/list", json={"dag_ids": dag_ids, "page_limit": 100}
                ).json()["dag_runs"]
                finished = [r for r in runs if r["state"] in ("success", "failed")]
                if len(finished) == DATASETS:
                    break
                assert time.monotonic() < deadline, f"{len(finished)}/{DATASETS} finished\n{stack.log_tail()}"
                time.sleep(2)
            tis = client.post(
                "/api/v2/dags/~/dagRuns/~/taskInstances/list", json={"dag_ids": dag_ids, "page_limit": 100}
            ).json()["task_instances"]
    finally:
        stop.set()
        sampler.join(10)

    assert sorted(r["state"] for r in runs) == ["success"] * DATASETS
    refreshes = [ti for ti in tis if ti["pool"] == POOL_NAME]
    assert len(refreshes) == DATASETS and all(ti["state"] == "success" for ti in refreshes)
    overlap = _max_overlap([(ti["start_date"], ti["end_date"]) for ti in refreshes])
    assert 1 <= overlap <= SLOTS, overlap
    assert samples and max(s[0] for s in samples) <= SLOTS
    assert max(s[1] for s in samples) >= 1  # the sampler saw the task processes it sums
    peak_rss = max(s[2] for s in samples)
    assert peak_rss <= bound, (peak_rss, bound)
    for i in (0, DATASETS - 1):
        path = stack.data_dir / f"par_{i:02d}.duckdb"
        con = duckdb.connect(str(path), read_only=True)
        try:
            assert con.sql(f"SELECT count(*) FROM par_{i:02d}").fetchall()[0][0] == ROWS
        finally:
            con.close()
    print(
        f"[reliability] {DATASETS} datasets, pool {SLOTS}, executor parallelism {2 * SLOTS}: max "
        f"{overlap} task instances running at once; max pool occupied "
        f"{max(s[0] for s in samples)}; max {max(s[1] for s in samples)} refresh processes; peak RSS "
        f"sum {peak_rss // MIB} MiB (bound {bound // MIB} MiB = {SLOTS} x ({limit} + "
        f"{TASK_OVERHEAD_BYTES // MIB} MiB)); {len(samples)} samples"
    )
