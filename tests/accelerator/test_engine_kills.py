"""SIGKILL during full refreshes and appends: the data is the before or the after state (sqlite, postgres)."""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

import pyarrow as pa
import pytest

from airflow_provider_accel.spicepod.model import RefreshMode

from ._helpers import make_dataset, script, wait_for_line, write_parquet
from .engines import EngineUnderTest, engine_under_test

pytestmark = [pytest.mark.processes, pytest.mark.slow]
KILLS = 20  # kills that must land mid-refresh, per engine
BASE, STEP = 50_000, 100_000


def _ids(first: int, count: int) -> pa.Table:
    return pa.table({"id": pa.array(range(first, first + count), pa.int64()), "pad": ["y" * 30] * count})


@pytest.fixture(params=["sqlite", "postgres"])
def killed_engine(request: pytest.FixtureRequest, data_dir: Path) -> EngineUnderTest:
    with engine_under_test(request.param, data_dir) as under_test:
        yield under_test  # type: ignore[misc]


def test_kill_mid_refresh_leaves_before_or_after(killed_engine: EngineUnderTest, src: Path) -> None:
    """20 kills mid full refresh or append: rows are before or after, the next refresh clean, no leftovers."""
    engine = killed_engine
    rng = random.Random(13)
    path = write_parquet(src / "ids.parquet", _ids(1, BASE))
    dataset = engine.on(make_dataset("ids", path))
    engine.hook(dataset).refresh(dataset)
    landed = trials = 0
    while landed < KILLS and trials < KILLS * 4:
        trials += 1
        mode = rng.choice([RefreshMode.FULL, RefreshMode.APPEND])
        before = engine.rows(dataset, "count(*), max(id)")[0]
        incoming = _ids(1, BASE + STEP) if mode is RefreshMode.FULL else _ids(int(before[1]) + 1, STEP)
        write_parquet(path, incoming)
        after = (
            (BASE + STEP, BASE + STEP) if mode is RefreshMode.FULL else (before[0] + STEP, before[1] + STEP)
        )
        args = [engine.name, engine.data_dir, path, mode.value] + (
            [engine.pg_schema] if engine.pg_schema else []
        )
        proc = script("engine_refresh.py", *args)
        wait_for_line(proc, "start")
        time.sleep(rng.uniform(0.0, 1.5))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            landed += 1
        proc.communicate()
        state = engine.rows(dataset, "count(*), max(id)")[0]
        assert tuple(state) in (tuple(before), after), f"trial {trials} ({mode.value}): {state}"
        if state == tuple(before) and mode is RefreshMode.FULL:
            write_parquet(path, _ids(1, BASE))  # keep the table small for the next trial
            engine.hook(dataset).refresh(dataset)
    assert landed == KILLS, f"only {landed} of {trials} kills landed mid-refresh"
    write_parquet(path, _ids(1, BASE))
    assert engine.hook(dataset).refresh(dataset).total_rows == BASE
    assert engine.staging_leftovers(dataset) == []
