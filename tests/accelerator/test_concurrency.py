"""One writer per file: the flock serialises refreshes across processes; its timeout is transient."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from airflow_provider_accel.accelerator.hook import DuckDBAcceleratorHook
from airflow_provider_accel.accelerator.layout import writer_lock
from airflow_provider_accel.exceptions import SourceLockedError, TransientRefreshError
from airflow_provider_accel.sources.file import FileSource

from ._helpers import make_dataset, query, tables, write_parquet


class TimedSource(FileSource):
    """A file source noting when a refresh starts and stops using it (both inside the writer lock)."""

    entered = left = 0.0

    def prepare(self, con: duckdb.DuckDBPyConnection) -> None:
        self.entered = time.time()
        time.sleep(0.3)  # widen the window in which an overlapping writer would show
        super().prepare(con)

    def close(self) -> None:
        self.left = time.time()


def refresh_worker(data_dir: Path, shared: Path, source: Path, name: str, go: Path, out: Path) -> None:
    """Runs in a forked process: wait for ``go``, refresh, write the lock-held span to ``out``."""
    dataset = make_dataset(name, f"file:{source}", duckdb_file=shared)
    hook = DuckDBAcceleratorHook(data_dir=data_dir, lock_timeout=30)
    timed = TimedSource(dataset)
    while not go.exists():
        time.sleep(0.002)
    result = hook.refresh(dataset, source=timed)
    out.write_text(json.dumps({"entered": timed.entered, "left": timed.left, "rows": result.total_rows}))
    os._exit(0)  # skip the parent's (pytest's) exit handlers


class TestWriterLock:
    def test_two_processes_sharing_a_file_never_overlap(
        self, src: Path, data_dir: Path, tmp_path: Path
    ) -> None:
        """Two processes refreshing datasets of one file at once run one after the other; both land."""
        shared = tmp_path / "shared.duckdb"
        go = tmp_path / "go"
        # fork: the workers inherit the imported Airflow (importing it anew takes seconds).
        context = multiprocessing.get_context("fork")
        workers = []
        for name, count in (("alpha", 30_000), ("beta", 20_000)):
            write_parquet(src / f"{name}.parquet", pa.table({"id": list(range(count))}))
            args = (data_dir, shared, src / f"{name}.parquet", name, go, tmp_path / f"{name}.json")
            proc = context.Process(target=refresh_worker, args=args)
            proc.start()
            workers.append((name, count, proc))
        time.sleep(0.2)
        go.touch()
        spans = {}
        for name, count, proc in workers:
            proc.join(timeout=60)
            assert proc.exitcode == 0, f"{name} worker failed"
            spans[name] = json.loads((tmp_path / f"{name}.json").read_text())
            assert spans[name]["rows"] == count
        first, second = sorted(spans.values(), key=lambda s: s["entered"])
        assert first["left"] <= second["entered"], spans
        assert tables(shared) == {"alpha", "beta"}
        assert query(shared, "SELECT (SELECT count(*) FROM alpha), (SELECT count(*) FROM beta)") == [
            (30_000, 20_000)
        ]

    def test_lock_timeout_raises_transient_source_locked(
        self, hook: DuckDBAcceleratorHook, src: Path
    ) -> None:
        """A refresh that cannot get the writer lock in time raises SourceLockedError, a transient error."""
        write_parquet(src / "t.parquet", pa.table({"id": [1]}))
        dataset = make_dataset("events", f"file:{src}/t.parquet")
        hook.lock_timeout = 0.3
        with writer_lock(hook.dataset_path(dataset), timeout=1), pytest.raises(SourceLockedError) as caught:
            hook.refresh(dataset)
        assert isinstance(caught.value, TransientRefreshError) and caught.value.transient
        assert caught.value.dataset == "events" and "events" in str(caught.value)
        assert hook.refresh(dataset).total_rows == 1  # the lock is released afterwards
