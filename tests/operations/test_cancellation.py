"""The staging guard: SIGTERM during a refresh deletes this process's staging files, nothing else."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from airflow_provider_accel.operators.cancellation import discard_staging_on_termination


def _sigterm_inside_the_guard(live: Path, own: Path) -> list[int]:
    """SIGTERM this process inside the guard of ``live``, wait until ``own`` goes; the signals handled."""
    received: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    try:
        with discard_staging_on_termination(live, end_if_stuck=False):  # never SIGKILL pytest
            os.kill(os.getpid(), signal.SIGTERM)
            deadline = time.monotonic() + 10
            while own.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
    finally:
        signal.signal(signal.SIGTERM, previous)
    return received


def test_sigterm_inside_the_block_deletes_own_staging_files_only(tmp_path: Path) -> None:
    """Own staging files go at SIGTERM, even while the main thread is busy; live and others' stay."""
    live = tmp_path / "big.duckdb"
    live.write_bytes(b"live")
    own = tmp_path / f"big.duckdb.staging-{os.getpid()}-abc"
    own_wal = tmp_path / f"big.duckdb.staging-{os.getpid()}-abc.wal"
    other = tmp_path / "big.duckdb.staging-1-zzz"
    for path in (own, own_wal, other):
        path.write_bytes(b"x")
    received = _sigterm_inside_the_guard(live, own)
    assert not own.exists() and not own_wal.exists()
    assert live.read_bytes() == b"live" and other.exists()
    assert received == [signal.SIGTERM]  # the process's own handler still ran


def test_outside_the_block_nothing_is_deleted(tmp_path: Path) -> None:
    """After the block the wakeup fd is restored: a later SIGTERM deletes nothing."""
    live = tmp_path / "t.duckdb"
    with discard_staging_on_termination(live, end_if_stuck=False):
        pass
    own = tmp_path / f"t.duckdb.staging-{os.getpid()}-abc"
    own.write_bytes(b"x")
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: None)
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.5)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert own.exists()
    assert signal.set_wakeup_fd(-1) == -1


def test_guard_follows_the_engine_file(tmp_path: Path) -> None:
    """The guard watches the engine's own file (DuckDB, SQLite); a PostgreSQL dataset has none to guard."""
    from airflow_provider_accel.accelerator.engines import hook_for, local_file
    from airflow_provider_accel.spicepod.loader import parse_spicepod

    def dataset(engine: str, params: dict[str, str]) -> Any:
        acceleration = {"enabled": True, "engine": engine, "params": params}
        raw = {"version": "v1", "kind": "Spicepod", "name": "t"}
        raw["datasets"] = [{"from": "file:/x.parquet", "name": "trips", "acceleration": acceleration}]
        return parse_spicepod(raw, strict=True).datasets[0]

    duck, lite, pg = dataset("duckdb", {}), dataset("sqlite", {}), dataset("postgres", {"pg_host": "db"})
    assert local_file(hook_for(duck, data_dir=tmp_path), duck) == tmp_path / "trips.duckdb"
    assert local_file(hook_for(lite, data_dir=tmp_path), lite) == tmp_path / "trips.sqlite"
    assert local_file(hook_for(pg, data_dir=tmp_path), pg) is None
    with discard_staging_on_termination(None):  # nothing to guard: no wakeup fd taken
        assert signal.set_wakeup_fd(-1) == -1


def test_sigterm_deletes_a_sqlite_refresh_staging_file(tmp_path: Path) -> None:
    """A SQLite dataset's staging file (next to its .sqlite file) goes at SIGTERM; the live file stays."""
    live = tmp_path / "trips.sqlite"
    live.write_bytes(b"live")
    own = tmp_path / f"trips.sqlite.staging-{os.getpid()}-abc"
    own.write_bytes(b"x")
    assert _sigterm_inside_the_guard(live, own) == [signal.SIGTERM]
    assert not own.exists() and live.read_bytes() == b"live"


STUCK_REFRESH = """
import os, signal, sys, duckdb
from pathlib import Path
from airflow_provider_accel.operators.cancellation import discard_staging_on_termination

live = Path(sys.argv[1])
signal.signal(signal.SIGTERM, lambda signum, frame: None)  # as the task runner's: Python-level only
staging = live.with_name(f"{live.name}.staging-{os.getpid()}-abc")
with discard_staging_on_termination(live):
    con = duckdb.connect(str(staging))  # the staging file and its WAL, written by DuckDB
    con.execute("CREATE TABLE t AS SELECT 1 AS i")
    print("loading", flush=True)
    con.execute("SELECT count(*) FROM range(100000000000) a")  # minutes inside one DuckDB call
print("returned", flush=True)
"""


def test_a_refresh_stuck_in_duckdb_is_ended_and_leaves_no_staging_file(tmp_path: Path) -> None:
    """SIGTERM while the main thread is inside one DuckDB call: staging files go and the process
    ends itself with SIGKILL (DuckDB would re-create the staging WAL until the supervisor's kill)."""
    live = tmp_path / "big.duckdb"
    live.write_bytes(b"live")
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(STUCK_REFRESH), str(live)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "loading"
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=60) == -signal.SIGKILL
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.duckdb"]
    assert live.read_bytes() == b"live"
