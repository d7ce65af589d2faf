"""Where a refresh spends its time: pyinstrument profiles of the full and append paths, and the
wall time of each SQL statement the hook runs (its ``run()`` helper wrapped for the duration)."""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.data import TaxiData
from bench.refresh import TABLE, _fresh, dataset, hook


@contextlib.contextmanager
def statement_timer() -> Iterator[list[tuple[str, float]]]:
    """Record (statement, seconds) of every ``run()``/``scalar()`` of the hook module."""
    from airflow_provider_accel.accelerator import hook as hook_module

    original = hook_module.run
    timings: list[tuple[str, float]] = []

    def timed_run(con: Any, sql: str, params: Any = None) -> Any:
        started = time.perf_counter()
        try:
            return original(con, sql, params)
        finally:
            timings.append((" ".join(sql.split())[:140], time.perf_counter() - started))

    hook_module.run = timed_run
    try:
        yield timings
    finally:
        hook_module.run = original


def profile_paths(data: TaxiData, work: Path, out_dir: Path) -> dict[str, Any]:
    from pyinstrument import Profiler

    from airflow_provider_accel.spicepod.model import RefreshMode

    report: dict[str, Any] = {}
    seed = _fresh(work / "profile_seed")
    hook(seed).refresh(dataset(str(data.base_dir)), mode=RefreshMode.FULL)
    for kind in ("full", "append"):
        target = _fresh(work / f"profile_{kind}")
        if kind == "append":
            shutil.copyfile(seed / f"{TABLE}.duckdb", target / f"{TABLE}.duckdb")
        h = hook(target)
        ds = dataset(str(data.plus_dir))
        mode = RefreshMode.FULL if kind == "full" else RefreshMode.APPEND
        profiler = Profiler(interval=0.001)
        with statement_timer() as timings:
            started = time.perf_counter()
            profiler.start()
            h.refresh(ds, mode=mode)
            profiler.stop()
            total = time.perf_counter() - started
        text = profiler.output_text(unicode=False, color=False, show_all=False)
        (out_dir / f"profile_{kind}.txt").write_text(text)
        statements = sorted(timings, key=lambda t: -t[1])
        report[kind] = {
            "total_s": round(total, 3),
            "sql_s": round(sum(s for _, s in timings), 3),
            "top_statements": [{"sql": sql, "s": round(s, 3)} for sql, s in statements[:8]],
            "profile": f"profile_{kind}.txt",
        }
        shutil.rmtree(target, ignore_errors=True)
    report["size_estimate"] = size_estimate_cost(seed / f"{TABLE}.duckdb")
    shutil.rmtree(seed, ignore_errors=True)
    return report


SAMPLE_QUERIES = {
    # What DuckDBAcceleratorHook._estimate_arrow_bytes ran after every DuckDB-native load before
    # the first profile...
    "before: USING SAMPLE 10000 ROWS": "SELECT * FROM {t} USING SAMPLE 10000 ROWS",
    # ...and what it runs since: the first 10,000 rows (reads one row group, not the table).
    "after: LIMIT 10000": "SELECT * FROM {t} LIMIT 10000",
}


def size_estimate_cost(path: Path, reps: int = 3) -> dict[str, Any]:
    """Time and result of the hook's Arrow-size estimate on an accelerated table, before and after.

    ``USING SAMPLE n ROWS`` is reservoir sampling: it reads every row of the table, so its cost
    grows with the table although it only keeps 10,000 rows.
    """
    import statistics

    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = int(con.execute(f"SELECT count(*) FROM {TABLE}").fetchall()[0][0])
        times: dict[str, list[float]] = {k: [] for k in SAMPLE_QUERIES}
        estimates: dict[str, int] = {}
        for _ in range(reps):
            for label, sql in SAMPLE_QUERIES.items():
                started = time.perf_counter()
                sample = con.sql(sql.format(t=TABLE)).to_arrow_table()
                times[label].append(time.perf_counter() - started)
                estimates[label] = round(sample.nbytes / max(sample.num_rows, 1) * rows)
    finally:
        con.close()
    return {
        "table_rows": rows,
        "median_s": {k: round(statistics.median(v), 4) for k, v in times.items()},
        "estimated_bytes": estimates,
    }
