"""SIGKILL of the refreshing process at random moments: the file always holds the before or the after.

A forked process runs ``DuckDBAcceleratorHook.refresh`` (see scripts/refresh_worker.py) and is killed
at a random moment: every other trial anywhere between its start and its calibrated duration, the
others while it writes (between its staging file appearing and the calibrated staging lifetime).
After each kill the file must open, the dataset must equal exactly the snapshot before or after the
refresh (row count and a content checksum over every column), and the next refresh must succeed and
leave no staging file behind.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from ._helpers import (
    RefreshWorker,
    fingerprint_file,
    fingerprint_of,
    report,
    rows,
    staging_leftovers,
    write_parquet,
)

pytestmark = [pytest.mark.slow, pytest.mark.processes]

#: Kills that must land while the refresh runs; a kill that comes after the refresh finished (the
#: machine got faster than the calibration) does not count, and the trials go on, up to MAX_TRIALS.
TRIALS = 20
MAX_TRIALS = 3 * TRIALS
ROWS = 300_000


def _kill_moment(trial: int, rng: random.Random, duration: float, window: float) -> dict[str, Any]:
    """Even trials: anywhere in the refresh; odd trials: while it writes (after its staging file appears)."""
    if trial % 2 == 0:
        return {"kill_after": rng.uniform(0.0, 0.9 * duration)}
    return {"kill_after": rng.uniform(0.0, window), "from_staging": True}


def _recalibrate(outcome: Any, duration: float, window: float) -> tuple[float, float]:
    """A refresh that finished before its kill ran faster than calibrated: aim earlier from now on."""
    if outcome.exit_code != 0 or outcome.seconds >= duration:
        return duration, window
    return outcome.seconds, window * outcome.seconds / duration


def _trial_checks(live: Path, before: tuple[int, int], after: tuple[int, int]) -> str:
    seen = fingerprint_file(live, "events")  # must open and be readable right after the kill
    assert seen in (before, after), (
        f"after a kill the dataset is {seen}, neither before {before} nor after {after}"
    )
    return "before" if seen == before else "after"


def test_sigkill_during_full_refresh_leaves_before_or_after(tmp_path: Path) -> None:
    """A full refresh killed at any moment leaves the old or the new table, whole; the next one succeeds."""
    data_dir, src = tmp_path / "data", tmp_path / "src"
    versions = [rows(ROWS, seed=1), rows(ROWS + 13, seed=2)]
    files = [write_parquet(src / f"v{i}.parquet", t) for i, t in enumerate(versions)]
    prints = [fingerprint_of(t) for t in versions]
    assert prints[0] != prints[1]
    live = data_dir / "events.duckdb"

    def command(version: int) -> dict:
        return {"name": "events", "from": f"file:{files[version]}", "mode": "full"}

    worker = RefreshWorker(data_dir)
    rng = random.Random(20240601)
    outcomes: Counter[str] = Counter()
    try:
        first = worker.refresh(command(0))
        assert first.exit_code == 0
        calibration = worker.refresh(command(1), live=live, measure_staging=True)  # un-killed
        duration, window = calibration.seconds, calibration.staging_window
        current = 1
        killed_alive = staging_seen = trials = 0
        while killed_alive < TRIALS and trials < MAX_TRIALS:
            target = 1 - current
            moment = _kill_moment(trials, rng, duration, window)
            outcome = worker.refresh(command(target), live=live, **moment)
            trials += 1
            killed_alive += outcome.exit_code == -9
            duration, window = _recalibrate(outcome, duration, window)
            staging_seen += outcome.staging_at_kill
            outcomes[_trial_checks(live, prints[current], prints[target])] += 1
            recovery = worker.refresh(command(target))
            assert recovery.exit_code == 0, "the refresh after a kill failed"
            assert fingerprint_file(live, "events") == prints[target]
            assert staging_leftovers(live) == []
            current = target
    finally:
        worker.close()
    report(
        "crash-full",
        {
            "trials": trials,
            "rows": ROWS,
            "refresh_s": round(duration, 2),
            "staging_window_s": round(window, 2),
            "killed_mid_refresh": killed_alive,
            "staging_file_at_kill": staging_seen,
            **outcomes,
        },
    )
    # The point is only proven if the kills landed while the refresh was writing.
    assert killed_alive >= TRIALS, f"only {killed_alive} of {trials} kills hit a running refresh"
    assert staging_seen >= TRIALS // 3, f"only {staging_seen}/{trials} kills landed while staging"


def test_sigkill_during_append_leaves_before_or_after(tmp_path: Path) -> None:
    """An append killed at any moment leaves the old rows or old + new rows, whole; the next one succeeds."""
    data_dir, src = tmp_path / "data", tmp_path / "src" / "events"
    live = data_dir / "events.duckdb"
    command = {"name": "events", "from": f"file:{src}/", "mode": "append", "time_column": "ts"}
    drops = [rows(ROWS, start=i * ROWS, seed=i) for i in range(2)]

    worker = RefreshWorker(data_dir)
    rng = random.Random(20240602)
    outcomes: Counter[str] = Counter()
    try:
        write_parquet(src / "drop-00.parquet", drops[0])
        assert worker.refresh(command).exit_code == 0
        write_parquet(src / "drop-01.parquet", drops[1])
        calibration = worker.refresh(command, live=live, measure_staging=True)  # un-killed
        duration, window = calibration.seconds, calibration.staging_window
        expected = fingerprint_of(drops[0])
        expected = (expected[0] + ROWS, expected[1] + fingerprint_of(drops[1])[1])
        assert fingerprint_file(live, "events") == expected
        killed_alive = staging_seen = wal_seen = trials = 0
        while killed_alive < TRIALS and trials < MAX_TRIALS:
            i = trials + 2
            trials += 1
            # The source keeps only the newest drop: old rows are accelerated already (and an append
            # reads only rows newer than the watermark anyway), so every trial costs the same.
            for old in src.glob("drop-*.parquet"):
                old.unlink()
            drop = rows(ROWS, start=i * ROWS, seed=i)
            write_parquet(src / f"drop-{i:02d}.parquet", drop)
            new = fingerprint_of(drop)
            before, after = expected, (expected[0] + new[0], expected[1] + new[1])
            outcome = worker.refresh(command, live=live, **_kill_moment(i, rng, duration, window))
            killed_alive += outcome.exit_code == -9
            duration, window = _recalibrate(outcome, duration, window)
            staging_seen += outcome.staging_at_kill
            wal_seen += outcome.wal_at_kill
            outcomes[_trial_checks(live, before, after)] += 1
            recovery = worker.refresh(command)
            assert recovery.exit_code == 0, "the append after a kill failed"
            assert fingerprint_file(live, "events") == after, "rows lost or duplicated"
            assert staging_leftovers(live) == []
            expected = after
    finally:
        worker.close()
    report(
        "crash-append",
        {
            "trials": trials,
            "rows_per_append": ROWS,
            "refresh_s": round(duration, 2),
            "staging_window_s": round(window, 2),
            "killed_mid_refresh": killed_alive,
            "staging_file_at_kill": staging_seen,
            "wal_at_kill": wal_seen,
            **outcomes,
        },
    )
    assert killed_alive >= TRIALS, f"only {killed_alive} of {trials} kills hit a running refresh"
