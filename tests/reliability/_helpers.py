"""Shared by the reliability tests: data builders, fingerprints, the refresh worker, free ports."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

SCRIPTS = Path(__file__).parent / "scripts"
REPO_ROOT = Path(__file__).resolve().parents[2]
#: Connection settings of the forked refreshes: no lookup of a missing Airflow connection per process.
DUCKDB_CONN_ENV = {
    "AIRFLOW_CONN_ACCEL_DUCKDB_DEFAULT": json.dumps({"conn_type": "accel_duckdb", "extra": {}})
}


def rows(n: int, *, start: int = 0, seed: int = 0) -> pa.Table:
    """``n`` rows: id, v (depends on ``seed``), ts (one second per id, so later ids are later)."""
    ids = pa.array(range(start, start + n), pa.int64())
    return pa.table(
        {
            "id": ids,
            "v": pc.add(ids, seed * 1_000_003),
            "ts": ids.cast(pa.timestamp("s")).cast(pa.timestamp("us")),
        }
    )


def write_parquet(path: Path, table: pa.Table) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, row_group_size=50_000)
    return path


FINGERPRINT_SQL = "SELECT count(*), coalesce(sum(hash(id, v, ts)), 0) FROM {}"


def fingerprint_of(table: pa.Table) -> tuple[int, int]:
    """(row count, content checksum) of an Arrow table, computed as for the accelerated table."""
    con = duckdb.connect()
    try:
        con.register("t", table)
        n, s = con.execute(FINGERPRINT_SQL.format("t")).fetchone()  # type: ignore[misc]
        return int(n), int(s)
    finally:
        con.close()


def fingerprint_file(path: Path, table: str) -> tuple[int, int]:
    """(row count, checksum) of ``table`` in a DuckDB file, opened read-only (raises if it cannot open)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        n, s = con.execute(FINGERPRINT_SQL.format(f'"{table}"')).fetchone()  # type: ignore[misc]
        return int(n), int(s)
    finally:
        con.close()


def staging_leftovers(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.glob(path.name + ".staging-*"))


@dataclass
class RefreshOutcome:
    pid: int
    exit_code: int
    seconds: float
    staging_at_kill: bool = False
    wal_at_kill: bool = False
    staging_window: float = 0.0  # measured with ``measure_staging``: how long a staging file existed


class RefreshWorker:
    """Drives scripts/refresh_worker.py: one forked process per refresh, killable at any moment."""

    def __init__(self, data_dir: Path) -> None:
        env = {**os.environ, **DUCKDB_CONN_ENV}
        self.data_dir = data_dir
        self.stderr_path = data_dir.parent / "refresh_worker.log"
        self.stderr_path.parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, str(SCRIPTS / "refresh_worker.py"), str(data_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr_path.open("w"),
            text=True,
            env=env,
        )
        assert self._line() == "ready"

    def _line(self) -> str:
        out: IO[str] = self.proc.stdout  # type: ignore[assignment]
        while True:  # Airflow may log to stdout; the worker's own lines start with "@@ "
            line = out.readline()
            if not line:
                raise AssertionError(f"refresh worker died: {self.stderr_path.read_text()[-3000:]}")
            if line.startswith("@@ "):
                return line[3:].strip()

    def refresh(
        self,
        command: dict[str, Any],
        *,
        kill_after: float | None = None,
        live: Path | None = None,
        from_staging: bool = False,
        measure_staging: bool = False,
    ) -> RefreshOutcome:
        """Run one refresh; with ``kill_after``, SIGKILL the refreshing process after that many seconds.

        ``from_staging`` counts ``kill_after`` from the moment the refresh's staging file appears next
        to ``live`` (so the kill lands while it writes); ``measure_staging`` reports how long the
        staging file existed (un-killed calibration runs).
        """
        self.proc.stdin.write(json.dumps(command) + "\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]
        pid = int(self._line().split()[1])
        staging = wal = False
        window = 0.0
        if (from_staging or measure_staging) and live is not None:
            deadline = time.monotonic() + 30
            while not staging_leftovers(live) and time.monotonic() < deadline:
                time.sleep(0.001)
            appeared = time.monotonic()
            if measure_staging:
                while staging_leftovers(live) and time.monotonic() < deadline:
                    time.sleep(0.001)
                window = time.monotonic() - appeared
        if kill_after is not None:
            time.sleep(kill_after)
            if live is not None:
                staging = bool(staging_leftovers(live))
                wal = live.with_name(live.name + ".wal").exists()
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _, code, seconds = self._line().split()
        return RefreshOutcome(pid, int(code), float(seconds), staging, wal, window)

    def close(self) -> None:
        self.proc.stdin.close()  # type: ignore[union-attr]
        self.proc.wait(timeout=30)


def report(name: str, data: dict[str, Any]) -> None:
    """Print the figures that docs/reliability.md quotes (visible with ``-s`` and in the CI log)."""
    print(f"\n[reliability] {name}: {json.dumps(data, sort_keys=True)}")
