"""``python -m bench.engines --rows N``: the SQLite and PostgreSQL engines against their bare limits.

* ``postgres_full_vs_adbc_ingest`` — a full refresh into PostgreSQL over a bare ADBC
  ``adbc_ingest`` of the same Parquet into a fresh table (goal <= 1.15).
* ``sqlite_full_vs_executemany`` — a full refresh into SQLite over a bare ``executemany`` of the
  same Arrow batches in one transaction (goal <= 1.0).

Each side is the median of ``--repeat`` runs, interleaved A/B. Prints one JSON object; ``--out``
merges it into a JSON file.
Needs PostgreSQL at ACCEL_TEST_PG_* (default 127.0.0.1:5432, postgres, trust).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

PG_HOST = os.environ.get("ACCEL_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("ACCEL_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("ACCEL_TEST_PG_USER", "postgres")
PG_URI = f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/postgres?sslmode=disable"


def _data(rows: int, path: Path) -> Path:
    import duckdb

    duckdb.sql(
        f"COPY (SELECT i AS id, i % 97 AS vendor, (i % 1000) / 10.0 AS fare, "
        f"TIMESTAMPTZ '2024-01-01' + to_seconds(i) AS ts, 'trip-' || i AS note FROM range({rows}) t(i)) "
        f"TO '{path}' (FORMAT parquet)"
    )
    return path


def _interleaved(repeat: int, runs: dict[str, Callable[[], object]]) -> dict[str, float]:
    """Median seconds of each run, measured A/B interleaved (one of each per round), so that a load
    change on the shared machine hits both sides alike."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            started = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def _figures(engine: str, limit: str, medians: dict[str, float]) -> dict[str, float]:
    """``<engine>_full_s``, ``<engine>_<limit>_s`` and their ratio ``<engine>_full_vs_<limit>``."""
    ours, bare = medians["ours"], medians["bare"]
    return {
        f"{engine}_full_s": round(ours, 3),
        f"{engine}_{limit}_s": round(bare, 3),
        f"{engine}_full_vs_{limit}": round(ours / bare, 3),
    }


def _dataset(engine: str, parquet: Path, schema: str) -> object:
    from airflow_provider_accel.spicepod.model import Acceleration, Dataset, Engine

    params: dict[str, object] = {}
    if engine == "postgres":
        params = {"pg_host": PG_HOST, "pg_port": PG_PORT, "pg_user": PG_USER, "pg_sslmode": "disable"}
        params["pg_schema"] = schema
    accel = dataclasses.replace(Acceleration(), engine=Engine(engine), params=params)
    return Dataset(from_=f"file:{parquet}", name="trips", acceleration=accel)


def run(rows: int, repeat: int, engines: tuple[str, ...] = ("postgres", "sqlite")) -> dict[str, float]:
    import adbc_driver_postgresql.dbapi as pg

    from airflow_provider_accel.accelerator.engines import hook_for

    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        parquet = _data(rows, work / "trips.parquet")
        schema = f"bench_{uuid.uuid4().hex[:8]}"

        def bare_ingest_reader() -> None:
            reader = pa.RecordBatchReader.from_batches(
                pq.ParquetFile(parquet).schema_arrow, pq.ParquetFile(parquet).iter_batches()
            )
            with pg.connect(PG_URI) as con, con.cursor() as cur:
                cur.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
                cur.execute(f"DROP TABLE IF EXISTS {schema}.bare")
                cur.adbc_ingest("bare", reader, mode="create", db_schema_name=schema)
                con.commit()

        if "postgres" in engines:
            pg_dataset = _dataset("postgres", parquet, schema)
            pg_hook = hook_for(pg_dataset, data_dir=work)  # type: ignore[arg-type]
            try:
                medians = _interleaved(
                    repeat,
                    {"bare": bare_ingest_reader, "ours": lambda: pg_hook.refresh(pg_dataset)},  # type: ignore[arg-type]
                )
                results.update(_figures("postgres", "adbc_ingest", medians))
            finally:
                with pg.connect(PG_URI) as con, con.cursor() as cur:
                    cur.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
                    con.commit()

        def bare_executemany() -> None:
            target = work / "bare.sqlite"
            with contextlib.suppress(FileNotFoundError):
                target.unlink()
            con = sqlite3.connect(target, isolation_level=None)
            try:
                names = pq.ParquetFile(parquet).schema_arrow.names
                con.execute(f"CREATE TABLE trips ({', '.join(names)})")
                con.execute("BEGIN")
                insert = f"INSERT INTO trips VALUES ({', '.join('?' for _ in names)})"
                for batch in pq.ParquetFile(parquet).iter_batches():
                    con.executemany(insert, zip(*(c.to_pylist() for c in batch.columns), strict=True))
                con.execute("COMMIT")
            finally:
                con.close()

        if "sqlite" in engines:
            sqlite_dataset = _dataset("sqlite", parquet, schema)
            sqlite_hook = hook_for(sqlite_dataset, data_dir=work)  # type: ignore[arg-type]
            medians = _interleaved(
                repeat,
                {"bare": bare_executemany, "ours": lambda: sqlite_hook.refresh(sqlite_dataset)},  # type: ignore[arg-type]
            )
            results.update(_figures("sqlite", "executemany", medians))
    results["rows"] = rows
    results["repeat"] = repeat
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--only", choices=("postgres", "sqlite"), help="measure one engine only")
    args = parser.parse_args()
    results = run(args.rows, args.repeat, (args.only,) if args.only else ("postgres", "sqlite"))
    if args.out:
        merged = json.loads(args.out.read_text()) if args.out.exists() else {}
        merged.setdefault("engines", {}).update(results)
        args.out.write_text(json.dumps(merged, indent=2) + "\n")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
