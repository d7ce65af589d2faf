"""Readers in other processes while refreshes run: only complete snapshots, never an unhidden error.

Two reader processes loop over the dataset while the test refreshes it: one with the documented read
helper (``reader.read_dataset``), one with plain read-only opens and no retry (to see which errors a
reader meets at all). Every observation must be one of the complete snapshots the refreshes produce;
the helper reader must see no error; the raw reader's errors must all be the documented retryable kind
(DuckDB's lock conflict).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.compute as pc
import pytest

from airflow_provider_accel.accelerator.hook import DuckDBAcceleratorHook
from airflow_provider_accel.spicepod.model import Acceleration, Dataset, RefreshMode

from ._helpers import DUCKDB_CONN_ENV, report, rows, write_parquet

pytestmark = [pytest.mark.slow, pytest.mark.processes]

REFRESHES = 20
FULL_ROWS = 50_000
APPEND_ROWS = 10_000
#: Shared with tests/accelerator/test_atomicity.py.
READER_LOOP = Path(__file__).resolve().parents[1] / "scripts" / "reader_loop.py"


def _dataset(from_: str, mode: RefreshMode, time_column: str | None = None) -> Dataset:
    return Dataset(
        from_=from_,
        name="events",
        params={"file_format": "parquet"},
        time_column=time_column,
        acceleration=Acceleration(refresh_mode=mode),
    )


def _key(table) -> tuple[int, int]:
    return table.num_rows, int(pc.sum(table["v"]).as_py() or 0)


@pytest.fixture
def hook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DuckDBAcceleratorHook:
    for key, value in DUCKDB_CONN_ENV.items():
        monkeypatch.setenv(key, value)
    return DuckDBAcceleratorHook(data_dir=tmp_path / "data", lock_timeout=60)


def _readers_during(path: Path, tmp_path: Path, refresh_all) -> dict[str, dict]:
    stop = tmp_path / "stop"
    procs = {}
    for how in ("helper", "raw"):
        procs[how] = subprocess.Popen(
            [
                sys.executable,
                str(READER_LOOP),
                str(path),
                "events",
                how,
                str(stop),
                str(tmp_path / f"{how}.json"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    try:
        for proc in procs.values():
            assert proc.stdout.readline().strip() == "ready", proc.stderr.read()  # type: ignore[union-attr]
        refresh_all()
        time.sleep(0.2)
    finally:
        stop.touch()
        for proc in procs.values():
            proc.communicate(timeout=60)
    assert all(p.returncode == 0 for p in procs.values())
    return {how: json.loads((tmp_path / f"{how}.json").read_text()) for how in procs}


def _check(seen: dict[str, dict], valid: set[tuple[int, int]], name: str) -> None:
    helper, raw = seen["helper"], seen["raw"]
    bad = {tuple(o) for o in helper["observations"] + raw["observations"]} - valid
    assert not bad, f"readers saw partial or foreign snapshots: {sorted(bad)[:5]}"
    assert helper["errors"] == [], f"the read helper let errors through: {helper['errors'][:3]}"
    unexpected = [e for e in raw["errors"] if not e["retryable"]]
    assert unexpected == [], f"raw readers met non-retryable errors: {unexpected[:3]}"
    distinct = {tuple(o) for o in helper["observations"]}
    report(
        name,
        {
            "refreshes": REFRESHES,
            "helper_reads": len(helper["observations"]),
            "helper_errors": len(helper["errors"]),
            "helper_distinct_snapshots": len(distinct),
            "raw_reads": len(raw["observations"]),
            "raw_retryable_errors": len(raw["errors"]),
        },
    )
    # The readers really read during the refreshes: they saw many of the snapshots.
    assert len(distinct) >= REFRESHES // 4, f"the helper reader saw only {len(distinct)} snapshots"


def test_readers_during_full_refreshes(hook: DuckDBAcceleratorHook, tmp_path: Path) -> None:
    """During 20 full refreshes readers see only whole snapshots; the helper reader never sees an error."""
    src = tmp_path / "src"
    tables = [rows(FULL_ROWS + 7 * i, seed=i) for i in range(REFRESHES + 1)]
    files = [write_parquet(src / f"v{i}.parquet", t) for i, t in enumerate(tables)]
    valid = {_key(t) for t in tables}
    assert len(valid) == len(tables) and all(n > 0 for n, _ in valid)
    hook.refresh(_dataset(f"file:{files[0]}", RefreshMode.FULL))
    path = hook.data_dir / "events.duckdb"

    def refresh_all() -> None:
        for f in files[1:]:
            hook.refresh(_dataset(f"file:{f}", RefreshMode.FULL))

    _check(_readers_during(path, tmp_path, refresh_all), valid, "readers-full")


def test_readers_during_appends(hook: DuckDBAcceleratorHook, tmp_path: Path) -> None:
    """During 20 appends readers see only whole states; the helper hides the lock conflicts."""
    src = tmp_path / "src" / "events"
    drops = [rows(APPEND_ROWS, start=i * APPEND_ROWS, seed=i) for i in range(REFRESHES + 1)]
    valid, n, s = set(), 0, 0
    for drop in drops:
        n, s = n + drop.num_rows, s + _key(drop)[1]
        valid.add((n, s))
    dataset = _dataset(f"file:{src}/", RefreshMode.APPEND, time_column="ts")
    write_parquet(src / "drop-00.parquet", drops[0])
    hook.refresh(dataset)
    path = hook.data_dir / "events.duckdb"

    def refresh_all() -> None:
        for i, drop in enumerate(drops[1:], start=1):
            write_parquet(src / f"drop-{i:02d}.parquet", drop)
            result = hook.refresh(dataset)
            assert result.rows == APPEND_ROWS

    _check(_readers_during(path, tmp_path, refresh_all), valid, "readers-append")
