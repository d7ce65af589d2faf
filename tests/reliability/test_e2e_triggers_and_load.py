"""Against the real Airflow stack (tests/e2e_stack.py): concurrent triggers on a shared file, and load.

* 50 concurrent POSTs for one dataset, mixed with its scheduled runs and with POSTs for a second
  dataset that shares its DuckDB file: writes to the file never overlap, every 201 names a run that
  served it and succeeded, the final data is correct.
* 2,000 POSTs on loopback at several concurrencies: no 5xx, no lost request, the api-server's
  memory flat afterwards.

Overlap is proven from the file system, by the refreshes themselves: each refresh of a shared file
works in its own ``<file>.staging-<pid>-<token>`` created after it took the file's writer lock and
deleted before it releases it, so the inotify create/delete events of those files (in the kernel's
order) are the refreshes' write intervals; the live file's modify events must fall inside one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import os
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import e2e_stack
import httpx
import pytest

from ._helpers import report
from ._inotify import IN_CREATE, IN_DELETE, IN_MODIFY, IN_MOVED_FROM, IN_MOVED_TO, DirectoryRecorder

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.processes]

SHARED_ROWS = 20_000
# The stack's own datasets (trips, events) plus two datasets sharing one DuckDB file.
SPICEPOD = (
    e2e_stack.E2E_SPICEPOD
    + """\
  - from: file:{src}/shared_a.csv
    name: shared_a
    params:
      file_format: csv
    acceleration:
      enabled: true
      refresh_mode: full
      refresh_check_interval: 4s
      params:
        duckdb_file: shared.duckdb
  - from: file:{src}/shared_b.csv
    name: shared_b
    params:
      file_format: csv
    acceleration:
      enabled: true
      refresh_mode: full
      params:
        duckdb_file: shared.duckdb
"""
)
#: Request bodies for dataset A: different confs (so not everything joins one run), same data.
BODIES_A = [
    None,
    {},
    {"refresh_mode": "full"},
    {"refresh_jitter_max": "0s"},
    {"refresh_sql": "SELECT * FROM shared_a"},
]
BODIES_B = [{}, {"refresh_sql": "SELECT * FROM shared_b"}]


def _write_source(path: Path, rows: int, factor: int) -> list[tuple[int, int]]:
    data = [(i, i * factor) for i in range(rows)]
    path.write_text("id,v\n" + "".join(f"{i},{v}\n" for i, v in data))
    return data


@pytest.fixture(scope="module")
def stack(airflow_stack: Any) -> Any:
    src = airflow_stack.source_dir
    _write_source(src / "shared_a.csv", SHARED_ROWS, 3)
    _write_source(src / "shared_b.csv", SHARED_ROWS // 2, 7)
    airflow_stack.spicepod_path.write_text(SPICEPOD.format(src=src))
    for dag_id in ("accelerate_trips", "accelerate_shared_a", "accelerate_shared_b"):
        airflow_stack.wait_for_idle(dag_id, timeout=240)
    yield airflow_stack
    # The stack is shared with later test directories: give them back the spicepod it started with.
    airflow_stack.write_spicepod(e2e_stack.E2E_SPICEPOD)


def _post(client: httpx.Client, name: str, body: Any) -> tuple[float, httpx.Response]:
    sent = time.time()
    content = b"" if body is None else json.dumps(body).encode()
    return sent, client.post(
        f"/v1/datasets/{name}/acceleration/refresh",
        content=content,
        headers={"Content-Type": "application/json"},
    )


def _run(client: httpx.Client, dag_id: str, run_id: str) -> dict[str, Any]:
    response = client.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
    assert response.status_code == 200, response.text
    return response.json()


def _wait_runs_done(
    stack: Any, dag_id: str, run_ids: set[str], timeout: float = 240
) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    pending, done = set(run_ids), {}
    with stack.client() as client:
        while pending and time.monotonic() < deadline:
            for run_id in sorted(pending):
                run = _run(client, dag_id, run_id)
                if run["state"] in ("success", "failed"):
                    done[run_id] = run
                    pending.discard(run_id)
            if pending:
                time.sleep(1)
    assert not pending, f"runs of {dag_id} still not finished: {sorted(pending)[:5]}\n{stack.log_tail()}"
    return done


def _write_intervals(
    events: list[tuple[str, str]], live: str
) -> tuple[list[tuple[str, int, int]], list[int]]:
    """Each refresh's write interval (pid, first, last event index) from its staging files.

    A refresh may create a second staging file inside the first (compaction): those nest and are
    merged per process. A staging file whose first event is not its creation belongs to a refresh
    that was already writing when the recording started (the 4 s schedule): it is active from the
    first event. Returns the intervals and the event indexes of live-file writes outside all of them.
    """
    prefix = live + ".staging-"

    def pid_of(name: str) -> str:
        # <pid>-<token>, or previous-<pid>: the old file a verified swap keeps until the check passes.
        parts = name.removeprefix(prefix).split("-")
        return parts[1] if parts[0] == "previous" else parts[0]

    first_kind: dict[str, str] = {}
    for kind, name in events:
        if name.startswith(prefix):
            first_kind.setdefault(name, kind)
    active = {name for name, kind in first_kind.items() if kind != "create"}
    per_pid: dict[str, list[int]] = {}
    for name in active:
        per_pid.setdefault(pid_of(name), []).append(0)
    stray_writes: list[int] = []
    for index, (kind, name) in enumerate(events):
        if name.startswith(prefix):
            pid = pid_of(name)
            if kind == "create":
                active.add(name)
                per_pid.setdefault(pid, []).append(index)
            elif kind in ("delete", "moved_from") and name in active:
                active.discard(name)
                per_pid[pid].append(index)
        elif name in (live, live + ".wal") and kind == "modify" and not active:
            stray_writes.append(index)
    intervals = [(pid, min(ix), max(ix)) for pid, ix in per_pid.items()]
    return sorted(intervals, key=lambda i: i[1]), stray_writes


def test_concurrent_triggers_on_a_shared_file(stack: Any) -> None:
    """50 POSTs for A, 20 for B (same file), A's scheduled runs: writes never overlap, no request lost."""
    live = "shared.duckdb"
    recorder = DirectoryRecorder(
        stack.data_dir, IN_CREATE | IN_DELETE | IN_MODIFY | IN_MOVED_FROM | IN_MOVED_TO
    )
    window_start = dt.datetime.now(dt.UTC)
    requests = [("shared_a", BODIES_A[i % len(BODIES_A)]) for i in range(50)]
    requests += [("shared_b", BODIES_B[i % len(BODIES_B)]) for i in range(20)]
    requests.sort(key=lambda r: hash((r[0], json.dumps(r[1]))) % 7)  # interleave A and B
    try:
        with stack.client() as client, ThreadPoolExecutor(max_workers=25) as pool:
            results = list(pool.map(lambda r: (r, *_post(client, *r)), requests))
        codes = Counter(response.status_code for _, _, response in results)
        assert set(codes) == {201}, f"not every request was accepted: {codes} " + str(
            [r.text[:200] for _, _, r in results if r.status_code != 201][:3]
        )
        served: dict[str, set[str]] = {"shared_a": set(), "shared_b": set()}
        with stack.client() as client:
            for (name, body), sent, response in results:
                payload = response.json()
                served[name].add(payload["dag_run_id"])
                run = _run(client, f"accelerate_{name}", payload["dag_run_id"])
                # The run serves this request: it carries exactly these overrides.
                expected_conf = {k: v for k, v in (body or {}).items()}
                if expected_conf.get("refresh_jitter_max") == "0s":
                    expected_conf["refresh_jitter_max"] = "0s"
                assert run["conf"] == expected_conf, (body, run["conf"])
                payload["sent"] = sent
        runs_a = _wait_runs_done(stack, "accelerate_shared_a", served["shared_a"])
        runs_b = _wait_runs_done(stack, "accelerate_shared_b", served["shared_b"])
        # A request that joined a queued run was accepted before that run started.
        for (name, _), sent, response in results:
            payload = response.json()
            run = (runs_a if name == "shared_a" else runs_b)[payload["dag_run_id"]]
            assert run["state"] == "success", run
            if payload["joined"]:
                started = dt.datetime.fromisoformat(run["start_date"]).timestamp()
                assert started >= sent - 1.0, f"joined run {run['dag_run_id']} started before the request"
        # The 4 s schedule keeps running beside the manual runs; max_active_runs=1 may hold it back
        # while manual runs queue, so wait (bounded) until one scheduled run joined the mix.
        scheduled: list[dict[str, Any]] = []
        deadline = time.monotonic() + 90
        with stack.client() as client:
            while not scheduled and time.monotonic() < deadline:
                all_a = client.get(
                    "/api/v2/dags/accelerate_shared_a/dagRuns",
                    params={"run_after_gte": window_start.isoformat(), "limit": 200},
                ).json()["dag_runs"]
                scheduled = [r for r in all_a if r["run_type"] == "scheduled"]
                if not scheduled:
                    time.sleep(2)
        # wait for any scheduled run still running, so the interval analysis sees it complete
        _wait_runs_done(stack, "accelerate_shared_a", {r["dag_run_id"] for r in scheduled})
        stack.wait_for_idle("accelerate_shared_b")
    finally:
        events = recorder.stop()
    intervals, stray_writes = _write_intervals(events, live)
    overlaps = [(a, b) for a, b in itertools.pairwise(intervals) if b[1] < a[2]]
    with stack.client() as client:
        tis = []
        for dag_id in ("accelerate_shared_a", "accelerate_shared_b"):
            response = client.get(
                f"/api/v2/dags/{dag_id}/dagRuns/~/taskInstances",
                params={
                    "task_id": "refresh",
                    "state": ["success"],
                    "start_date_gte": window_start.isoformat(),
                    "limit": 500,
                },
            )
            tis += [(dag_id, t["start_date"], t["end_date"]) for t in response.json()["task_instances"]]
    report(
        "concurrent-triggers",
        {
            "posts_a": 50,
            "posts_b": 20,
            "runs_a_manual": len(served["shared_a"]),
            "runs_b": len(served["shared_b"]),
            "runs_a_scheduled": len(scheduled),
            "joined": sum(r.json()["joined"] for _, _, r in results),
            "write_intervals": len(intervals),
            "overlapping_intervals": len(overlaps),
            "stray_live_writes": len(stray_writes),
            "successful_refresh_tasks": len(tis),
        },
    )
    assert scheduled, "no scheduled run of shared_a happened during the test"
    assert not overlaps, f"refreshes of {live} overlapped: {overlaps[:3]}"
    assert not stray_writes, "the live file was written outside any refresh's write interval: " + "; ".join(
        str(events[max(0, i - 4) : i + 2]) for i in stray_writes[:3]
    )
    # Every successful refresh task of the window left one write interval (a few more if a refresh
    # started just before the window).
    assert len(intervals) >= len(tis) > 0, (len(intervals), len(tis))
    # Runs of one dataset never overlap either (max_active_runs=1), by their task instances.
    for dag_id in ("accelerate_shared_a", "accelerate_shared_b"):
        spans = sorted((s, e) for d, s, e in tis if d == dag_id)
        assert all(b[0] >= a[1] for a, b in itertools.pairwise(spans)), f"{dag_id} runs overlapped"
    # Final data: both tables complete and correct in the shared file.
    from airflow_provider_accel.accelerator.reader import read_dataset

    path = stack.data_dir / live
    for name, factor, count in (("shared_a", 3, SHARED_ROWS), ("shared_b", 7, SHARED_ROWS // 2)):
        table = read_dataset(
            path, f'SELECT count(*) AS n, sum(id) AS i, sum(v) AS v FROM "{name}"'
        ).to_pylist()[0]
        assert table == {"n": count, "i": count * (count - 1) // 2, "v": factor * count * (count - 1) // 2}


def _group_rss_kib(leader: int) -> int:
    """VmRSS of the api-server: its process and every process of its process group."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = Path(f"/proc/{entry}/stat").read_text()
            pgid = int(stat.rsplit(")", 1)[1].split()[2])
            if pgid == leader:
                for line in Path(f"/proc/{entry}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
    return total


LOAD_PHASES = ((5, 600), (20, 700), (50, 700))  # (concurrency, requests): 2,000 in all


def test_load_2000_posts(stack: Any) -> None:
    """2,000 POSTs at concurrencies 5/20/50: no 5xx, every 201 maps to a run that succeeded, RSS flat."""
    leader = stack.processes["api-server"].pid
    with stack.client() as client:  # warm-up: imports, caches, connection pools
        for _ in range(20):
            _post(client, "trips", {})
    time.sleep(2)
    rss_before = _group_rss_kib(leader)
    statuses: Counter[int] = Counter()
    run_ids: set[str] = set()
    lock = threading.Lock()
    started = time.monotonic()
    phase_seconds = []
    for concurrency, count in LOAD_PHASES:
        phase_start = time.monotonic()
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        with (
            httpx.Client(
                base_url=stack.base_url,
                headers={"Authorization": f"Bearer {stack.tokens['admin']}"},
                timeout=60,
                limits=limits,
            ) as client,
            ThreadPoolExecutor(max_workers=concurrency) as pool,
        ):

            def one(i: int) -> None:
                _, response = _post(client, "trips", [{}, {"refresh_mode": "full"}][i % 2])
                with lock:
                    statuses[response.status_code] += 1
                    if response.status_code == 201:
                        run_ids.add(response.json()["dag_run_id"])

            list(pool.map(one, range(count)))
        phase_seconds.append(round(time.monotonic() - phase_start, 1))
    elapsed = time.monotonic() - started
    time.sleep(3)
    rss_after = _group_rss_kib(leader)
    runs = _wait_runs_done(stack, "accelerate_trips", run_ids, timeout=300)
    report(
        "load",
        {
            "requests": sum(c for _, c in LOAD_PHASES),
            "phases": [c for c, _ in LOAD_PHASES],
            "phase_seconds": phase_seconds,
            "seconds": round(elapsed, 1),
            "statuses": dict(statuses),
            "distinct_runs": len(run_ids),
            "runs_succeeded": sum(r["state"] == "success" for r in runs.values()),
            "rss_before_kib": rss_before,
            "rss_after_kib": rss_after,
        },
    )
    assert not [code for code in statuses if code >= 500], statuses
    assert statuses[201] == sum(c for _, c in LOAD_PHASES), statuses
    assert all(r["state"] == "success" for r in runs.values()), "a run serving accepted requests failed"
    assert rss_after < 1.5 * rss_before, (rss_before, rss_after)
