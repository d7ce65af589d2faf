"""Peak RSS of a full refresh, from Parquet and from PostgreSQL, each in a fresh child process.

The child imports everything first and records its RSS (the baseline: Python, Airflow, DuckDB,
pyarrow), then refreshes and reports ``ru_maxrss`` (peak RSS of the process). Both are reported; the
growth figure is the ratio of the peak RSS, as the issue defines it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

PG: dict[str, Any] = {
    "host": os.environ.get("ACCEL_TEST_PG_HOST", "127.0.0.1"),
    "port": int(os.environ.get("ACCEL_TEST_PG_PORT", "5432")),
    "user": os.environ.get("ACCEL_TEST_PG_USER", "postgres"),
    "dbname": os.environ.get("ACCEL_BENCH_PG_DB", "test"),
}
PG_SCHEMA = "accel_bench"
SETTINGS_CONN_ENV = "AIRFLOW_CONN_ACCEL_DUCKDB_DEFAULT"


def _status_mib(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak() -> None:
    """Reset the process's peak RSS (VmHWM) to its current RSS (Linux >= 4.0)."""
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")


def child_main(jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Runs in the child: full refreshes, each with its peak RSS.

    The peak is ``VmHWM`` (``ru_maxrss`` would not do: Linux keeps it across ``exec``, so a child
    would report its parent's peak). Between jobs of one child the peak is reset to the current RSS.
    """
    import time

    from airflow_provider_accel.spicepod.model import Acceleration, Dataset, RefreshMode
    from bench.refresh import hook, quiet_logs

    quiet_logs()
    results = []
    for args in jobs:
        ds = Dataset(
            from_=args["from"],
            name="taxi",
            params=args.get("params", {}),
            time_column="tpep_pickup_datetime",
            acceleration=Acceleration(refresh_mode=RefreshMode.FULL),
        )
        out = Path(args["dir"])
        out.mkdir(parents=True, exist_ok=True)
        if "duckdb_extra" in args:  # the accelerator's DuckDB settings connection (accel_duckdb_default)
            os.environ[SETTINGS_CONN_ENV] = json.dumps(
                {"conn_type": "accel_duckdb", "extra": args["duckdb_extra"]}
            )
        else:
            os.environ.pop(SETTINGS_CONN_ENV, None)
        h = hook(out)
        _ = h.connection_extra  # the connection lookup imports what it needs: part of the baseline
        _reset_peak()
        baseline = _status_mib("VmRSS")
        started = time.perf_counter()
        result = h.refresh(ds, mode=RefreshMode.FULL)
        results.append(
            {
                "rows": result.rows,
                "seconds": round(time.perf_counter() - started, 3),
                "baseline_rss_mib": round(baseline, 1),
                "peak_rss_mib": round(_status_mib("VmHWM"), 1),
                # What the refresh's DuckDB was given, and why (the task log's line).
                "memory_limit": h.memory_budget.memory_limit if h.memory_budget else None,
                "memory_limit_reason": h.memory_budget.reason if h.memory_budget else None,
                "separate_process": len(jobs) == 1,
            }
        )
        for leftover in out.glob("taxi.duckdb*"):
            leftover.unlink()
    return results


def run_child(jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.memory", json.dumps(jobs)],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[1],
    )
    if out.returncode != 0:
        raise RuntimeError(f"memory child failed ({out.returncode}): {out.stderr[-3000:]}")
    results: list[dict[str, Any]] = json.loads(out.stdout.strip().splitlines()[-1])
    return results


# -- PostgreSQL -----------------------------------------------------------------------------------------


def pg_params() -> dict[str, Any]:
    return {
        "pg_host": PG["host"],
        "pg_port": PG["port"],
        "pg_user": PG["user"],
        "pg_db": PG["dbname"],
        "pg_sslmode": "disable",
    }


def pg_uri() -> str:
    return f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{PG['dbname']}"


def pg_tables(sizes: list[int], parquet_for: Callable[[int], Path]) -> dict[int, str]:
    """``accel_bench.taxi_<rows>`` per size, loaded once with ADBC's COPY-based ingest and kept."""
    import adbc_driver_postgresql.dbapi as pgdbapi
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables: dict[int, str] = {}
    with pgdbapi.connect(pg_uri(), autocommit=True) as conn:
        with conn.cursor() as cur:
            cur.execute(f"CREATE SCHEMA IF NOT EXISTS {PG_SCHEMA}")
        for rows in sizes:
            name = f"taxi_{rows}"
            with conn.cursor() as cur:
                cur.execute(f"SELECT to_regclass('{PG_SCHEMA}.{name}') IS NOT NULL")
                exists = cur.fetchone()[0]
                if exists:
                    cur.execute(f"SELECT count(*) FROM {PG_SCHEMA}.{name}")
                    if cur.fetchone()[0] == rows:
                        tables[rows] = f"{PG_SCHEMA}.{name}"
                        continue
                    cur.execute(f"DROP TABLE {PG_SCHEMA}.{name}")
            reader = pq.ParquetFile(parquet_for(rows)).iter_batches(batch_size=200_000)
            first = next(reader)
            stream = pa.RecordBatchReader.from_batches(first.schema, _chain(first, reader))
            with conn.cursor() as cur:
                cur.adbc_ingest(name, stream, mode="create", db_schema_name=PG_SCHEMA)
                cur.execute(f"ANALYZE {PG_SCHEMA}.{name}")
            tables[rows] = f"{PG_SCHEMA}.{name}"
    return tables


def _chain(first: Any, rest: Any) -> Any:
    yield first
    yield from rest


if __name__ == "__main__":
    os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
    print(json.dumps(child_main(json.loads(sys.argv[1]))))
