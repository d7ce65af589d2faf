"""Two hosts on one machine: two Airflow homes (own data dirs, own metadata DBs) sharing one S3 store.

Each step runs a host's refresh DAGs with ``dag.test()`` in that host's own long-lived subprocess (its
AIRFLOW_HOME, configuration and metadata DB), driven over a pipe: in-process runs are what a worker
does for one task, and one process per host gives each host its own Airflow without starting a
scheduler per host or an interpreter per step.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ._support import count, write_drop

SCRIPT = Path(__file__).parent / "scripts" / "host.py"

pytestmark = pytest.mark.processes  # one Airflow process per host

STORE = """
version: v1
kind: Spicepod
name: {host}
snapshots:
  enabled: true
{store}
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


class Host:
    """One host's long-lived ``scripts/host.py`` process, driven over its stdin (one start-up per host)."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.log = (home / "host.log").open("w")
        self.process = subprocess.Popen(
            [sys.executable, str(SCRIPT), str(home)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )

    def wait_ready(self) -> None:
        """Until the process has imported Airflow and opened its metadata DB."""
        self._until("READY")

    def _until(self, marker: str) -> list[str]:
        assert self.process.stdout is not None
        lines = []
        for line in self.process.stdout:
            if line.rstrip("\n") == marker:
                return lines
            lines.append(line)
        self.log.flush()
        raise AssertionError(
            f"host {self.home.name} exited ({self.process.wait()}) before {marker}: "
            + "".join(lines)[-3000:]
            + (self.home / "host.log").read_text()[-3000:]
        )

    def run(self, *dag_ids: str) -> list[dict[str, Any]]:
        """Run the DAGs with dag.test() on this host: each one's state, task state and XCom summary."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(dag_ids) + "\n")
        self.process.stdin.flush()
        lines = self._until("DONE")
        results = [json.loads(line[7:]) for line in lines if line.startswith("RESULT ")]
        assert len(results) == len(dag_ids), "".join(lines)[-3000:]
        return results

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def _store(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """The spicepod's snapshot store between the hosts: a moto S3 bucket, or a shared directory."""
    if kind == "file":
        return f"  location: file://{tmp_path / 'store'}/snapshots/"
    moto_s3 = request.getfixturevalue("moto_s3")
    return (
        f"  location: s3://{moto_s3.new_bucket()}/snapshots/\n"
        f"  params:\n    s3_endpoint: {moto_s3.endpoint}\n    s3_key: k\n    s3_secret: s\n"
        "    s3_region: us-east-1"
    )


@pytest.fixture(params=["s3", "file"])
def hosts(
    request: pytest.FixtureRequest, tmp_path: Path, migrated_airflow_db: Any
) -> Iterator[dict[str, Any]]:
    """Hosts A (writer) and B (bootstrap and replica), each an Airflow home with its own metadata DB.

    Each gets a copy of the session's migrated, still empty metadata DB instead of migrating its own.
    The store between them is moto's S3 server or a ``file://`` directory both can reach.
    """
    src = tmp_path / "src"
    common = {"store": _store(request.param, tmp_path, request), "src": src}
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
    started: list[Host] = []
    try:
        for home in homes.values():
            migrated_airflow_db(home)
            started.append(Host(home))
        for host_process in started:  # both start up at once
            host_process.wait_ready()
        yield {"a": started[0], "b": started[1], "src": src}
    finally:
        for host_process in started:
            host_process.close()


def test_two_hosts_bootstrap_append_replica_and_rollback(
    hosts: dict[str, Any], api: Any, monkeypatch: Any
) -> None:
    """B bootstraps, appends only new rows; B's replica follows A three times and a rollback; counts match."""
    a, b, src = hosts["a"], hosts["b"], hosts["src"]
    a_home, b_home = a.home, b.home
    oracle = 0

    def drop(step: int, rows: int) -> None:
        nonlocal oracle
        write_drop(src, f"d{step}", range(oracle, oracle + rows))
        oracle += rows

    drop(0, 200)
    first = a.run("accelerate_trips", "accelerate_fares")
    assert all(r["state"] == "success" for r in first)
    assert first[0]["summary"]["snapshot"]["publish"]["status"] == "published"
    assert count(a_home / "accel" / "trips.duckdb") == oracle

    drop(1, 50)
    (trips_b,) = b.run("accelerate_trips")
    boot = trips_b["summary"]["snapshot"]["bootstrap"]
    assert boot["status"] == "restored" and boot["rows"] == 200
    assert trips_b["summary"]["rows"] == 50  # only the rows newer than the snapshot's watermark
    assert count(b_home / "accel" / "trips.duckdb") == oracle

    for step in range(2, 5):
        drop(step, 30)
        a.run("accelerate_fares")
        (replica,) = b.run("accelerate_fares")
        assert replica["state"] == "success" and replica["summary"]["snapshot"]["status"] == "restored"
        assert count(b_home / "accel" / "fares.duckdb", table="fares") == oracle

    # Roll fares back to its first snapshot through the API (the api-server reads host A's spicepod).
    monkeypatch.setenv("AIRFLOW__ACCEL__SPICEPOD_PATH", str(a_home / "spicepod.yaml"))
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
    (replica,) = b.run("accelerate_fares")
    assert replica["summary"]["snapshot"] == {"status": "restored", "snapshot_id": first_id}
    assert count(b_home / "accel" / "fares.duckdb", table="fares") == 200
