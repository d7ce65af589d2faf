"""Helpers for the snapshot tests: spicepods with a snapshot location, a source of Parquet drops."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from airflow_provider_accel.accelerator.hook import DuckDBAcceleratorHook
from airflow_provider_accel.spicepod.loader import parse_spicepod
from airflow_provider_accel.spicepod.model import Dataset

START = dt.datetime(2024, 1, 1)


def write_drop(src: Path, name: str, ids: range, *, extra_column: bool = False) -> None:
    """One Parquet file of rows ``ids``: id, pickup one minute apart from START, fare."""
    src.mkdir(parents=True, exist_ok=True)
    columns: dict[str, Any] = {
        "id": pa.array(list(ids), pa.int64()),
        "pickup": pa.array([START + dt.timedelta(minutes=i) for i in ids], pa.timestamp("us")),
        "fare": pa.array([float(i % 50) for i in ids], pa.float64()),
    }
    if extra_column:
        columns["tip"] = pa.array([1.0] * len(ids), pa.float64())
    pq.write_table(pa.table(columns), src / f"{name}.parquet")


def spicepod_dict(
    src: Path,
    location: str,
    *,
    mode: str = "append",
    snapshots: str | None = "enabled",
    extra: dict[str, Any] | None = None,
    store_params: dict[str, Any] | None = None,
    on_failure: str = "warn",
    on_schema_change: str | None = None,
) -> dict[str, Any]:
    acceleration: dict[str, Any] = {"enabled": True, "refresh_mode": mode, **(extra or {})}
    if mode == "snapshot":
        acceleration["refresh_check_interval"] = "1h"
    if snapshots is not None:
        acceleration["snapshots"] = snapshots
    dataset: dict[str, Any] = {
        "from": f"file:{src}",
        "name": "trips",
        "params": {"file_format": "parquet"},
        "time_column": "pickup",
        "acceleration": acceleration,
    }
    if on_schema_change is not None:
        dataset["on_schema_change"] = on_schema_change  # Spice's dataset key, read by the loader
    return {
        "version": "v1",
        "kind": "Spicepod",
        "name": "snaptest",
        "snapshots": {
            "enabled": True,
            "location": location,
            "bootstrap_on_failure_behavior": on_failure,
            "params": store_params or {},
        },
        "datasets": [dataset],
    }


def dataset_of(pod: dict[str, Any]) -> Dataset:
    return parse_spicepod(pod).datasets[0]


def refresh(dataset: Dataset, data_dir: Path, mode: str | None = None) -> dict[str, Any]:
    """What the operator does around a refresh: bootstrap, refresh, publish (the three call sites)."""
    from airflow_provider_accel import snapshots
    from airflow_provider_accel.spicepod.model import RefreshMode

    hook = DuckDBAcceleratorHook(data_dir=data_dir, lock_timeout=30)
    path = hook.dataset_path(dataset)
    boot = snapshots.before_refresh(dataset, path, lock_timeout=30)
    result = hook.refresh(dataset, mode=RefreshMode(mode) if mode else None)
    published = snapshots.after_refresh(
        dataset, path, lock_timeout=30, watermark=result.watermark, dag_run_id="r"
    )
    return {"result": result, "bootstrap": boot, "publish": published, "path": path}


def count(path: Path, where: str = "true", table: str = "trips") -> int:
    with duckdb.connect(str(path), read_only=True) as con:
        return int(con.execute(f'SELECT count(*) FROM "{table}" WHERE {where}').fetchall()[0][0])
