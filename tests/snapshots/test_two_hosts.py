"""Two hosts on one machine: two Airflow homes (own data dirs, own metadata DBs) sharing one S3 store.

Each step runs a host's refresh DAGs with ``dag.test()`` in a subprocess with that host's
AIRFLOW_HOME: in-process runs are what a worker does for one task, and the subprocess gives each host
its own configuration and metadata DB without starting a scheduler per host.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from ._support import count, write_drop

SCRIPT = Path(__file__).parent / "scripts" / "host.py"

STORE = """
version: v1
kind: Spicepod
name: {host}
snapshots:
  enabled: true
  location: s3://{bucket}/snapshots/
  params:
    s3_endpoint: {endpoint}
    s3_key: k
    s3_secret: s
    s3_region: us-east-1
datasets:
  - from: file:{src}
    name: trips
    params: {{file_format: parquet}}
    time_column: pickup
    acceleration:
      enabled: true
      refresh_mode: append
      refresh_check_interval: 1h
      snapshots: {trips_snapshots}
  - from: file:{src}
    name: fares
    params: {{file_format: parquet}}
    acceleration:
      enabled: true
      refresh_mode: {fares_mode}
      refresh_check_interval: 1h
      {fares_snapshots}
"""


def _run(home: Path, *dag_ids: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(home), *dag_ids], capture_output=True, text=True, timeout=300
    )
    results = [json.loads(line[7:]) for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and len(results) == len(dag_ids), done.stdout[-3000:] + done.stderr[-3000:]
    return results


@pytest.fixture
def hosts(tmp_path: Path, s3: Any) -> dict[str, Any]:
    bucket = s3.new_bucket()
    src = tmp_path / "src"
    common = {"bucket": bucket, "endpoint": s3.endpoint, "src": src}
    homes = {}
    for host, trips, fares_mode, fares in (
        ("host-a", "enabled", "full", "snapshots: enabled"),
        ("host-b", "bootstrap_only", "snapshot", ""),
    ):
        home = tmp_path / host
        home.mkdir()
        (home / "spicepod.yaml").write_text(
            textwrap.dedent(STORE).format(
                host=host, trips_snapshots=trips, fares_mode=fares_mode, fares_snapshots=fares, **common
            )
        )
        homes[host] = home
    return {"a": homes["host-a"], "b": homes["host-b"], "src": src, "s3": s3, "bucket": bucket}


def test_two_hosts_bootstrap_append_replica_and_rollback(
    hosts: dict[str, Any], api: Any, monkeypatch: Any
) -> None:
    """B bootstraps, appends only new rows; B's replica follows A three times and a rollback; counts match."""
    a, b, src = hosts["a"], hosts["b"], hosts["src"]
    oracle = 0

    def drop(step: int, rows: int) -> None:
        nonlocal oracle
        write_drop(src, f"d{step}", range(oracle, oracle + rows))
        oracle += rows

    drop(0, 200)
    first = _run(a, "accelerate_trips", "accelerate_fares")
    assert all(r["state"] == "success" for r in first)
    assert first[0]["summary"]["snapshot"]["publish"]["status"] == "published"
    assert count(a / "accel" / "trips.duckdb") == oracle

    drop(1, 50)
    (trips_b,) = _run(b, "accelerate_trips")
    boot = trips_b["summary"]["snapshot"]["bootstrap"]
    assert boot["status"] == "restored" and boot["rows"] == 200
    assert trips_b["summary"]["rows"] == 50  # only the rows newer than the snapshot's watermark
    assert count(b / "accel" / "trips.duckdb") == oracle

    for step in range(2, 5):
        drop(step, 30)
        _run(a, "accelerate_fares")
        (replica,) = _run(b, "accelerate_fares")
        assert replica["state"] == "success" and replica["summary"]["snapshot"]["status"] == "restored"
        assert count(b / "accel" / "fares.duckdb", table="fares") == oracle

    # Roll fares back to its first snapshot through the API (the api-server reads host A's spicepod).
    monkeypatch.setenv("AIRFLOW__ACCEL__SPICEPOD_PATH", str(a / "spicepod.yaml"))
    listing = api.client.get(
        "/v1/datasets/fares/acceleration/snapshots", headers=api.headers("viewer")
    ).json()
    assert [s["rows"] for s in listing] == [oracle, oracle - 30, oracle - 60, 200]  # A's four publishes
    first_id = min(s["id"] for s in listing)
    moved = api.client.post(
        "/v1/datasets/fares/acceleration/snapshots/current",
        json={"snapshot_id": first_id},
        headers=api.headers("admin"),
    )
    assert moved.status_code == 200, moved.text
    (replica,) = _run(b, "accelerate_fares")
    assert replica["summary"]["snapshot"] == {"status": "restored", "snapshot_id": first_id}
    assert count(b / "accel" / "fares.duckdb", table="fares") == 200
