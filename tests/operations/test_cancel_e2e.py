"""Cancel and replace on the real deployment (api-server, scheduler, dag-processor, triggerer).

The big dataset is a 10M-row CSV generated locally (about 200 MB). Its refresh is cancelled while
it loads: the test freezes the task process (SIGSTOP) once its staging file appears, cancels, and
lets it go on (SIGCONT) only once the supervisor's SIGTERM is pending, so the cancel always lands
mid-load however fast the machine loads 10M rows.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from e2e_stack import E2E_SPICEPOD

pytestmark = pytest.mark.e2e

BIG_ROWS = 10_000_000
SPICEPOD = (
    E2E_SPICEPOD
    + """\
  - from: file:{src}/big.csv
    name: big
    params:
      file_format: csv
    acceleration:
      enabled: true
      refresh_mode: full
  - from: file:{src}/small.csv
    name: swapped
    params:
      file_format: csv
    acceleration:
      enabled: true
      refresh_mode: full
      params:
        on_demand_refresh: replace
"""
)


def write_csv(path: Any, rows: int) -> None:
    import duckdb

    with duckdb.connect() as con:
        con.execute(
            f"COPY (SELECT i AS id, i % 97 AS bucket, md5(i::VARCHAR) AS tag FROM range({rows}) t(i)) "
            f"TO '{path}' (HEADER, DELIMITER ',')"
        )


def rows_of(stack: Any, name: str) -> int:
    from airflow_provider_accel.accelerator.reader import read_dataset
    from airflow_provider_accel.spicepod.loader import load_spicepod

    dataset = load_spicepod(stack.spicepod_path).dataset(name)
    return int(
        read_dataset(dataset, f"SELECT count(*) AS n FROM {name}", data_dir=stack.data_dir)["n"][0].as_py()
    )


def staging_files(stack: Any, name: str) -> list[Any]:
    return sorted(stack.data_dir.glob(f"{name}.duckdb.staging-*"))


@pytest.fixture(scope="module")
def stack(airflow_stack: Any) -> Any:
    src = airflow_stack.source_dir
    write_csv(src / "big.csv", 1_000)  # the initial load is small: the live table has 1,000 rows
    write_csv(src / "small.csv", 100)
    airflow_stack.write_spicepod(SPICEPOD)
    try:
        for dag_id in ("accelerate_big", "accelerate_swapped"):
            airflow_stack.wait_for_idle(dag_id)
        deadline = time.monotonic() + 120
        while not (airflow_stack.data_dir / "big.duckdb").exists() and time.monotonic() < deadline:
            time.sleep(1)
        yield airflow_stack
    finally:
        airflow_stack.write_spicepod(E2E_SPICEPOD)


def delete(stack: Any, name: str, run_id: str, user: str = "admin") -> Any:
    with stack.client(user) as client:
        return client.delete(f"/v1/datasets/{name}/acceleration/refresh/{run_id}")


def wait_state(
    stack: Any, name: str, run_id: str, states: tuple[str, ...], timeout: float = 120
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status = stack.refresh_status(name, run_id)
        if status["state"] in states or time.monotonic() > deadline:
            return status
        time.sleep(0.2)


def wait_process_gone(pid: int, timeout: float = 60) -> None:
    """Wait until the task process (same host: LocalExecutor) has exited."""
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists():
        assert time.monotonic() < deadline, f"task process {pid} still alive {timeout}s after the cancel"
        time.sleep(0.2)


def wait_sigterm_pending(pid: int, timeout: float = 60) -> None:
    """Wait until a SIGTERM is pending for the (stopped) process ``pid``, or the process is gone."""
    bit = 1 << (signal.SIGTERM - 1)
    deadline = time.monotonic() + timeout
    while True:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except FileNotFoundError:
            return
        pending = {
            k: int(v, 16)
            for k, v in (line.split(":\t") for line in status.splitlines())
            if k in ("SigPnd", "ShdPnd")
        }
        if any(mask & bit for mask in pending.values()):
            return
        assert time.monotonic() < deadline, (
            f"no SIGTERM reached task process {pid} {timeout}s after the cancel"
        )
        time.sleep(0.1)


def task_state(stack: Any, dag_id: str, run_id: str) -> str:
    with stack.client() as client:
        return str(
            client.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/refresh").json()["state"]
        )


def test_cancel_a_running_10m_row_refresh(stack):
    """A running 10M-row refresh cancelled: failed at once, no staging file, old data, next succeeds."""
    assert rows_of(stack, "big") == 1_000
    write_csv(stack.source_dir / "big.csv", BIG_ROWS)
    run_id = stack.trigger("big")["dag_run_id"]
    deadline = time.monotonic() + 120
    while not staging_files(stack, "big"):
        assert time.monotonic() < deadline, f"the refresh never started loading\n{stack.log_tail()}"
        time.sleep(0.05)
    # The staging file is <file>.staging-<pid>-<token>: the pid of the task process writing it.
    task_pid = int(staging_files(stack, "big")[0].name.split(".staging-")[1].split("-")[0])
    os.kill(task_pid, signal.SIGSTOP)  # mid-load until the cancel's SIGTERM is on its way
    try:
        response = delete(stack, "big", run_id)
        assert response.status_code == 200, response.text
        assert response.json()["cancelled_by"] == "admin"
        wait_sigterm_pending(task_pid)
    finally:
        os.kill(task_pid, signal.SIGCONT)
    status = wait_state(stack, "big", run_id, ("failed", "success"), timeout=10)
    assert status["state"] == "failed" and status["error"].startswith("Refresh cancelled by admin")
    assert task_state(stack, "accelerate_big", run_id) == "failed"
    wait_process_gone(task_pid)
    assert staging_files(stack, "big") == []
    assert rows_of(stack, "big") == 1_000  # the live data is untouched
    assert delete(stack, "big", run_id).status_code == 409

    write_csv(stack.source_dir / "big.csv", 2_000)
    after = stack.wait_for_refresh("big", stack.trigger("big")["dag_run_id"])
    assert after["state"] == "success" and rows_of(stack, "big") == 2_000


def test_cancel_a_queued_refresh(stack):
    """A queued refresh cancelled never runs: failed, note by the user, the data unchanged."""
    before = rows_of(stack, "big")
    with stack.client() as client:
        assert client.patch("/api/v2/dags/accelerate_big", json={"is_paused": True}).status_code == 200
    try:
        # Paused: the trigger route refuses (409), so queue through Airflow's own API while paused.
        with stack.client() as client:
            created = client.post("/api/v2/dags/accelerate_big/dagRuns", json={"logical_date": None})
        assert created.status_code == 200, created.text
        run_id = created.json()["dag_run_id"]
        assert stack.refresh_status("big", run_id)["state"] == "queued"
        assert delete(stack, "big", run_id).status_code == 200
    finally:
        with stack.client() as client:
            client.patch("/api/v2/dags/accelerate_big", json={"is_paused": False})
    status = stack.refresh_status("big", run_id)
    assert status["state"] == "failed" and "cancelled by admin" in status["error"]
    assert rows_of(stack, "big") == before
    assert staging_files(stack, "big") == []


def test_replace_two_quick_requests_end_with_one_success_the_second(stack):
    """on_demand_refresh: replace: the second of two quick requests cancels the first and succeeds."""
    write_csv(stack.source_dir / "small.csv", 300)
    first = stack.trigger("swapped")["dag_run_id"]
    second = stack.trigger("swapped")["dag_run_id"]
    assert first != second
    final = stack.wait_for_refresh("swapped", second)
    assert final["state"] == "success" and final["rows"] == 300
    first_status = stack.refresh_status("swapped", first)
    assert first_status["state"] == "failed" and "cancelled by admin" in first_status["error"]
    with stack.client() as client:
        history = client.get("/v1/datasets/swapped/acceleration/refreshes", params={"limit": 2}).json()
    assert [r["outcome"] for r in history["refreshes"]] == ["success", "cancelled"]
