"""The staging guard: SIGTERM during a refresh deletes this process's staging files, nothing else."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from airflow_provider_accel.operators.cancellation import discard_staging_on_termination


def test_sigterm_inside_the_block_deletes_own_staging_files_only(tmp_path: Path) -> None:
    """Own staging files go at SIGTERM, even while the main thread is busy; live and others' stay."""
    live = tmp_path / "big.duckdb"
    live.write_bytes(b"live")
    own = tmp_path / f"big.duckdb.staging-{os.getpid()}-abc"
    own_wal = tmp_path / f"big.duckdb.staging-{os.getpid()}-abc.wal"
    other = tmp_path / "big.duckdb.staging-1-zzz"
    for path in (own, own_wal, other):
        path.write_bytes(b"x")
    received = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    try:
        with discard_staging_on_termination(live):
            os.kill(os.getpid(), signal.SIGTERM)
            deadline = time.monotonic() + 10
            while own.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert not own.exists() and not own_wal.exists()
    assert live.read_bytes() == b"live" and other.exists()
    assert received == [signal.SIGTERM]  # the process's own handler still ran


def test_outside_the_block_nothing_is_deleted(tmp_path: Path) -> None:
    """After the block the wakeup fd is restored: a later SIGTERM deletes nothing."""
    live = tmp_path / "t.duckdb"
    with discard_staging_on_termination(live):
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
