"""Refresh timings: ours against DuckDB's own CTAS, dlt and the pandas + DuckDBHook pattern; append.

Every contender writes a fresh DuckDB file from the same Parquet files; files are deleted outside
the timed region. Repetitions are interleaved (each repetition runs every contender once, in an
order rotated per repetition) and the median is reported.
"""

from __future__ import annotations

import gc
import logging
import os
import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.data import TaxiData

TABLE = "taxi"
TIME_COLUMN = "tpep_pickup_datetime"


def _fresh(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def dataset(source: str, name: str = TABLE, time_column: str | None = TIME_COLUMN) -> Any:
    from airflow_provider_accel.spicepod.model import Acceleration, Dataset, RefreshMode

    return Dataset(
        from_=f"file:{source}",
        name=name,
        params={"file_format": "parquet"},
        time_column=time_column,
        acceleration=Acceleration(refresh_mode=RefreshMode.FULL),
    )


def hook(data_dir: Path) -> Any:
    from airflow_provider_accel.accelerator import DuckDBAcceleratorHook

    return DuckDBAcceleratorHook(data_dir=data_dir, lock_timeout=60)


# -- contenders: each writes table `name` into a new DuckDB file under `out`, returns rows ---------------


def ours_full(source: str, out: Path, name: str = TABLE, time_column: str | None = TIME_COLUMN) -> int:
    from airflow_provider_accel.spicepod.model import RefreshMode

    result = hook(out).refresh(dataset(source, name, time_column), mode=RefreshMode.FULL)
    return int(result.rows)


def duckdb_ctas(
    source: str, out: Path, name: str = TABLE, time_column: str | None = None, *, ordered: bool = True
) -> int:
    import duckdb

    con = duckdb.connect(str(out / f"{name}.duckdb"), config={"preserve_insertion_order": ordered})
    try:
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_parquet('{source}')").fetchall()
        return int(con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0])
    finally:
        con.close()


def duckdb_ctas_unordered(source: str, out: Path, name: str = TABLE, time_column: str | None = None) -> int:
    """DuckDB's CTAS with ``preserve_insertion_order`` off, as the accelerator's hook sets it."""
    return duckdb_ctas(source, out, name, time_column, ordered=False)


def _parquet_files(source: str) -> list[str]:
    import glob

    return sorted(glob.glob(source)) if any(c in source for c in "*?[") else [source]


def dlt_replace(source: str, out: Path, name: str = TABLE, time_column: str | None = None) -> int:
    """dlt's fastest path for Parquet: a resource yielding Arrow record batches, write disposition
    ``replace``, into a DuckDB file."""
    import dlt
    import pyarrow.parquet as pq

    @dlt.resource(name=name, write_disposition="replace")
    def rows() -> Any:
        for path in _parquet_files(source):
            yield from pq.ParquetFile(path).iter_batches(batch_size=100_000)

    pipeline = dlt.pipeline(
        pipeline_name=f"bench_{name}",
        destination=dlt.destinations.duckdb(str(out / f"{name}.duckdb")),
        dataset_name="main",
        pipelines_dir=str(out / "dlt_pipelines"),
    )
    pipeline.run(rows())
    trace = pipeline.last_trace
    normalize = trace.last_normalize_info if trace is not None else None
    if normalize is None:
        raise RuntimeError(f"dlt recorded no normalize step for {name}: the pipeline loaded nothing")
    return int(normalize.row_counts.get(name, 0))


def pandas_duckdbhook(source: str, out: Path, name: str = TABLE, time_column: str | None = None) -> int:
    """The common Airflow pattern: read into a pandas DataFrame, then write it through the official
    ``DuckDBHook`` (apache-airflow-providers-duckdb), as a registered DataFrame CTAS."""
    import pandas as pd
    from airflow.providers.duckdb.hooks.duckdb import DuckDBHook

    frame = pd.concat([pd.read_parquet(path) for path in _parquet_files(source)], ignore_index=True)
    con = DuckDBHook(database=str(out / f"{name}.duckdb")).get_conn()
    try:
        con.register("frame", frame)
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM frame").fetchall()
        return int(con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0])
    finally:
        con.close()


CONTENDERS: dict[str, Callable[..., int]] = {
    "ours": ours_full,
    "duckdb_ctas": duckdb_ctas,
    "duckdb_ctas_unordered": duckdb_ctas_unordered,
    "dlt": dlt_replace,
    "pandas_duckdbhook": pandas_duckdbhook,
}


def _timed(fn: Callable[..., int], *args: Any, **kwargs: Any) -> tuple[float, int]:
    gc.collect()
    started = time.perf_counter()
    rows = fn(*args, **kwargs)
    return time.perf_counter() - started, rows


def interleaved_full(
    source: str,
    work: Path,
    reps: int,
    *,
    contenders: tuple[str, ...] = tuple(CONTENDERS),
    name: str = TABLE,
    time_column: str | None = TIME_COLUMN,
    warmup: str | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Each repetition runs every contender once (order rotated); medians and every sample.

    ``warmup``: a small Parquet file each contender loads once, untimed, first (imports, caches).
    """
    if warmup is not None:
        for contender in contenders:
            out = _fresh(work / f"warmup_{contender}")
            CONTENDERS[contender](warmup, out, name="warmup", time_column=None)
            shutil.rmtree(out, ignore_errors=True)
    samples: dict[str, list[float]] = {c: [] for c in contenders}
    rows: dict[str, int] = {}
    for rep in range(reps):
        order = contenders[rep % len(contenders) :] + contenders[: rep % len(contenders)]
        for contender in order:
            out = _fresh(work / f"out_{contender}")
            seconds, n = _timed(CONTENDERS[contender], source, out, name=name, time_column=time_column)
            samples[contender].append(seconds)
            rows[contender] = n
            shutil.rmtree(out, ignore_errors=True)
            log(f"  rep {rep + 1}/{reps} {contender}: {seconds:.3f}s ({n:,} rows)")
    medians = {c: statistics.median(s) for c in contenders for s in [samples[c]]}
    return {"median_s": medians, "samples_s": samples, "rows": rows}


def interleaved_append(
    data: TaxiData, work: Path, reps: int, *, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Append the 1% drop to the accelerated base dataset, against a full refresh of base + drop.

    The accelerated base file is built once; each append repetition starts from a copy of it (the
    copy is not timed). The dataset reads the ``plus`` directory in both cases.
    """
    from airflow_provider_accel.spicepod.model import RefreshMode

    seed = _fresh(work / "append_seed")
    hook(seed).refresh(dataset(str(data.base_dir)), mode=RefreshMode.FULL)
    seeded = seed / f"{TABLE}.duckdb"
    samples: dict[str, list[float]] = {"append": [], "full": []}
    appended = 0
    for rep in range(reps):
        for kind in ("append", "full") if rep % 2 == 0 else ("full", "append"):
            out = _fresh(work / f"append_{kind}")
            if kind == "append":
                shutil.copyfile(seeded, out / seeded.name)
                os.sync()
            mode = RefreshMode.APPEND if kind == "append" else RefreshMode.FULL
            ds = dataset(str(data.plus_dir))
            h = hook(out)
            gc.collect()
            started = time.perf_counter()
            result = h.refresh(ds, mode=mode)
            seconds = time.perf_counter() - started
            samples[kind].append(seconds)
            if kind == "append":
                appended = int(result.rows)
                # Spice's append (no refresh_append_overlap) fetches rows strictly newer than the
                # watermark: drop rows sharing the last accelerated timestamp are not fetched.
                if result.total_rows != data.base_rows + appended or appended < data.drop_rows * 0.99:
                    raise RuntimeError(
                        f"append loaded {result.rows} rows (total {result.total_rows}); expected about "
                        f"{data.drop_rows} ({data.base_rows + data.drop_rows})"
                    )
            shutil.rmtree(out, ignore_errors=True)
            log(f"  rep {rep + 1}/{reps} {kind}: {seconds:.3f}s ({result.rows:,} rows)")
    shutil.rmtree(seed, ignore_errors=True)
    return {
        "median_s": {k: statistics.median(v) for k, v in samples.items()},
        "samples_s": samples,
        "base_rows": data.base_rows,
        "appended_rows": appended,
    }


def quiet_logs() -> None:
    """The hook's progress lines and Airflow's info logs would drown the bench's own output."""
    for name in ("airflow", "airflow_provider_accel", "dlt", "airflow.task"):
        logging.getLogger(name).setLevel(logging.WARNING)
