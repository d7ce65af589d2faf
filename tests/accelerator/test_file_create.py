"""acceleration.mode file_create: a new deploy of the dataset starts from an empty table; file keeps it."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest

from airflow_provider_accel.accelerator.hook import DuckDBAcceleratorHook
from airflow_provider_accel.spicepod.model import AccelerationMode, Dataset, RefreshMode

from ._helpers import make_dataset, rows, write_parquet

T0 = dt.datetime(2024, 1, 1)


def write(src: Path, ids: range) -> None:
    write_parquet(
        src / "t.parquet",
        pa.table(
            {"id": list(ids), "ts": pa.array([T0 + dt.timedelta(hours=i) for i in ids], pa.timestamp("us"))}
        ),
    )


def in_mode(dataset: Dataset, mode: AccelerationMode, description: str | None = None) -> Dataset:
    assert dataset.acceleration is not None
    return dataclasses.replace(
        dataset, description=description, acceleration=dataclasses.replace(dataset.acceleration, mode=mode)
    )


@pytest.mark.parametrize("shared", [False, True], ids=["own-file", "shared-file"])
@pytest.mark.parametrize(
    ("mode", "fresh"),
    [
        (AccelerationMode.FILE_CREATE, True),
        (AccelerationMode.FILE, False),
        (AccelerationMode.FILE_UPDATE, False),
    ],
)
def test_redeploy(
    hook: DuckDBAcceleratorHook, src: Path, tmp_path: Path, mode: AccelerationMode, fresh: bool, shared: bool
) -> None:
    """Appends build on the file; a changed definition restarts a file_create dataset anew."""
    base = make_dataset(
        "events",
        f"file:{src}/t.parquet",
        mode=RefreshMode.APPEND,
        time_column="ts",
        duckdb_file=tmp_path / "shared.duckdb" if shared else None,
    )
    if shared:
        write(src, range(3))
        hook.refresh(make_dataset("other", f"file:{src}/t.parquet", duckdb_file=tmp_path / "shared.duckdb"))
    dataset = in_mode(base, mode)
    path = hook.dataset_path(dataset)
    write(src, range(10))
    hook.refresh(dataset)
    write(src, range(20, 25))  # the source dropped its old rows
    hook.refresh(dataset)  # same deploy: an append on top of the accelerated rows
    assert [r[0] for r in rows(path, "events", "id")] == [*range(10), *range(20, 25)]
    redeployed = in_mode(base, mode, description="v2")
    hook.refresh(redeployed)
    expected = list(range(20, 25)) if fresh else [*range(10), *range(20, 25)]
    assert [r[0] for r in rows(path, "events", "id")] == expected
    if shared:
        assert len(rows(path, "other")) == 3
