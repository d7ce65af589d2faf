"""Readers in other processes see the old or the new data, never a partial table (sqlite, postgres)."""

from __future__ import annotations

import contextlib
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest

from airflow_provider_accel.spicepod.model import RefreshMode
from airflow_provider_accel.sql.refresh_sql import quote_identifier

from ._helpers import make_dataset, script, wait_for_line, write_parquet
from .engines import EngineUnderTest, engine_under_test, pg_uri

pytestmark = pytest.mark.processes
REFRESHES = 20


def _ids(first: int, count: int) -> pa.Table:
    return pa.table({"id": pa.array(range(first, first + count), pa.int64()), "pad": ["x" * 40] * count})


@pytest.fixture(params=["sqlite", "postgres"])
def server_engine(request: pytest.FixtureRequest, data_dir: Path) -> EngineUnderTest:
    with engine_under_test(request.param, data_dir) as under_test:
        yield under_test  # type: ignore[misc]


def test_readers_see_whole_snapshots(server_engine: EngineUnderTest, src: Path, tmp_path: Path) -> None:
    """Two reader processes during 20 full refreshes and 20 appends: every read whole, none failing."""
    engine = server_engine
    path = write_parquet(src / "ids.parquet", _ids(1, 5000))
    dataset = engine.on(make_dataset("ids", path))
    hook = engine.hook(dataset)
    hook.refresh(dataset)
    if engine.name == "sqlite":
        target, table = str(hook.dataset_path(dataset)), quote_identifier("ids")
    else:
        target, table = pg_uri(), f"{quote_identifier(engine.pg_schema or '')}.{quote_identifier('ids')}"
    stop = tmp_path / "stop"
    readers = [script("engine_reader.py", engine.name, target, table, stop) for _ in range(2)]
    try:
        for reader in readers:
            wait_for_line(reader, "ready")
        for i in range(REFRESHES):
            write_parquet(path, _ids(1, 5000 if i % 2 else 8000))
            hook.refresh(dataset, mode=RefreshMode.FULL)
        appended = engine.on(make_dataset("ids", path, mode=RefreshMode.APPEND))
        total = start = engine.hook(appended).refresh(appended, mode=RefreshMode.FULL).total_rows
        for _ in range(REFRESHES):
            write_parquet(path, _ids(total + 1, 1000))
            total = engine.hook(appended).refresh(appended).total_rows
    finally:
        stop.touch()
        outputs = []
        for reader in readers:
            with contextlib.suppress(Exception):
                out, _ = reader.communicate(timeout=30)
                outputs.append(out)
    lines = Counter(line.split(" ", 1)[0] for out in outputs for line in out.splitlines())
    problems = [line for out in outputs for line in out.splitlines() if not line.startswith(("ok", "ready"))]
    assert total == start + REFRESHES * 1000
    assert lines["ok"] > 0
    assert problems == []
