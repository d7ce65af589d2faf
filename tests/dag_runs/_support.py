"""Helpers for the DAG run tests: Parquet drops and row counts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq


def write_drop(directory: Path, name: str, ids: range, start: dt.datetime) -> Path:
    """Write one Parquet 'drop' of trips: id, pickup time one minute apart, a fare."""
    directory.mkdir(parents=True, exist_ok=True)
    table = pa.table(
        {
            "id": pa.array(list(ids), pa.int64()),
            "pickup": pa.array(
                [start + dt.timedelta(minutes=i) for i in range(len(ids))], pa.timestamp("us")
            ),
            "fare": pa.array([float(i % 50) for i in ids], pa.float64()),
        }
    )
    path = directory / f"{name}.parquet"
    pq.write_table(table, path)
    return path


def count_rows(path: Path, table: str, where: str = "true") -> int:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(f'SELECT count(*) FROM "{table}" WHERE {where}').fetchall()[0][0]
