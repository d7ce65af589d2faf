"""Builders shared by the accelerator tests: datasets, source files in every format, file readers."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from airflow_provider_accel.accelerator.layout import STAGING_MARK
from airflow_provider_accel.spicepod.model import Acceleration, Dataset, OnConflict, RefreshMode, TimeFormat

SCRIPTS = Path(__file__).parent / "scripts"
REPO_ROOT = Path(__file__).resolve().parents[2]
UTC = dt.UTC
#: The fixed "now" of every data-window and retention test.
NOW = dt.datetime(2024, 6, 15, 12, 0, tzinfo=UTC)

ALL_TIME_FORMATS = list(TimeFormat)


def make_dataset(
    name: str,
    from_: str | Path,
    *,
    mode: RefreshMode = RefreshMode.FULL,
    time_column: str | None = None,
    time_format: TimeFormat | None = None,
    overlap: dt.timedelta | None = None,
    window: dt.timedelta | None = None,
    retention: dt.timedelta | None = None,
    primary_key: Sequence[str] = (),
    on_conflict: OnConflict | None = None,
    duckdb_file: str | Path | None = None,
    params: dict[str, Any] | None = None,
) -> Dataset:
    """A dataset with an acceleration block, built directly (no YAML)."""
    accel_params: dict[str, Any] = {"duckdb_file": str(duckdb_file)} if duckdb_file else {}
    return Dataset(
        from_=str(from_),
        name=name,
        params=params or {},
        time_column=time_column,
        time_format=time_format,
        acceleration=Acceleration(
            refresh_mode=mode,
            refresh_append_overlap=overlap,
            refresh_data_window=window,
            retention_check_enabled=retention is not None,
            retention_period=retention,
            primary_key=tuple(primary_key),
            on_conflict={primary_key[0]: on_conflict} if on_conflict and primary_key else {},
            params=accel_params,
        ),
    )


def encode_times(instants: Sequence[dt.datetime], fmt: TimeFormat | None) -> pa.Array:
    """Aware UTC instants as a column in ``fmt`` (ISO-8601 strings use mixed UTC offsets)."""
    if fmt in (None, TimeFormat.TIMESTAMP):
        return pa.array([i.replace(tzinfo=None) for i in instants], pa.timestamp("us"))
    if fmt == TimeFormat.TIMESTAMPTZ:
        return pa.array(instants, pa.timestamp("us", tz="UTC"))
    if fmt == TimeFormat.UNIX_SECONDS:
        return pa.array([int(i.timestamp()) for i in instants], pa.int64())
    if fmt == TimeFormat.UNIX_MILLIS:
        return pa.array([int(i.timestamp() * 1000) for i in instants], pa.int64())
    if fmt == TimeFormat.ISO8601:
        zones = [dt.UTC, dt.timezone(dt.timedelta(hours=2)), dt.timezone(dt.timedelta(hours=-5))]
        return pa.array(
            [i.astimezone(zones[n % 3]).isoformat() for n, i in enumerate(instants)],
            pa.string(),
        )
    if fmt == TimeFormat.DATE:
        return pa.array([i.date() for i in instants], pa.date32())
    raise AssertionError(fmt)


def write_parquet(path: Path, table: pa.Table) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


def write_csv(path: Path, table: pa.Table) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pacsv.write_csv(table, path)
    return path


def write_json(path: Path, table: pa.Table) -> Path:
    """Newline-delimited JSON of the table's rows (pyarrow has a JSON reader but no writer)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as out:
        for row in table.to_pylist():
            out.write(json.dumps(row, default=str) + "\n")
    return path


WRITERS = {"parquet": write_parquet, "csv": write_csv, "json": write_json}


def query(path: Path, sql: str) -> list[tuple[Any, ...]]:
    """Run a query on a DuckDB file opened read-only, then close it."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'").fetchall()
        return con.execute(sql).fetchall()
    finally:
        con.close()


def rows(path: Path, table: str, columns: str = "*") -> list[tuple[Any, ...]]:
    """Every row of ``table``, sorted (a canonical multiset)."""
    return sorted(query(path, f'SELECT {columns} FROM "{table}"'), key=sort_key)


def sort_key(row: Sequence[Any]) -> list[tuple[bool, Any]]:
    """Sort key for rows that may hold NULLs."""
    return [(value is None, value) for value in row]


def tables(path: Path) -> set[str]:
    return {name for (name,) in query(path, "SELECT table_name FROM duckdb_tables()")}


def columns(path: Path, table: str) -> list[str]:
    return [row[0] for row in query(path, f'DESCRIBE "{table}"')]


def leftovers(directory: Path) -> list[Path]:
    """Staging files (and their WALs) left in ``directory``."""
    return sorted(p for p in directory.iterdir() if STAGING_MARK in p.name)


def file_fingerprint(path: Path, table: str) -> tuple[int, Any]:
    """(row count, content checksum) of a table."""
    (result,) = query(path, f'SELECT count(*), sum(hash(__row)) FROM "{table}" AS __row')
    return result


def script(name: str | Path, *args: str | Path, **popen: Any) -> subprocess.Popen[str]:
    """Start one of ``scripts/`` (or the script at an absolute path) in a new Python process."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.Popen(
        [sys.executable, str(SCRIPTS / name), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        **popen,
    )


def wait_for_line(proc: subprocess.Popen[str], expected: str) -> None:
    """Block until the process prints ``expected`` as a line of its stdout (other lines are logs)."""
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        if line.strip() == expected:
            return
        seen.append(line)
    _, err = proc.communicate()
    raise AssertionError(f"the script ended without printing {expected!r}: {''.join(seen)} {err}")
