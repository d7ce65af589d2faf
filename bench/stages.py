"""How ``python -m bench run`` runs a stage, and its at-scale stages (wide table, thousand datasets,
snapshots, the sqlite and postgres engines).

One stage setup serves every stage: :func:`run_child` runs a bench module in a child process on its
own ``AIRFLOW_HOME`` (the endpoint, many-datasets and end-to-end figures need a fresh interpreter and
Airflow configuration), and :func:`guarded` records a failed stage as ``{"error": ...}`` instead of
failing the run. :func:`summary` gives the at-scale keys (None when not measured).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]


def fresh_home(work: Path, name: str) -> Path:
    """An empty ``AIRFLOW_HOME`` under ``work`` (a previous run's is removed)."""
    home = work / name
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    return home


def run_child(
    module: str, args: dict[str, Any], home: Path, log: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """``python -m <module> '<json args>'`` with the bench's Airflow environment; its last stdout line.

    Lines the child prints before it that start with two spaces are progress, passed to ``log``.
    """
    from bench.stack import airflow_env

    proc = subprocess.run(
        [sys.executable, "-m", module, json.dumps(args)],
        env=airflow_env(home),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=3600,
    )
    lines = proc.stdout.strip().splitlines()
    if log is not None:
        for line in lines[:-1]:
            if line.startswith("  "):
                log(line)
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{module} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def guarded(
    results: dict[str, Any], key: str, log: Callable[[str], None], measure: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """``results[key] = measure()``; a failure is recorded there as ``{"error": ...}`` and logged."""
    try:
        results[key] = measure()
    except Exception as err:  # one stage's failure is reported, the others still run
        results[key] = {"error": f"{type(err).__name__}: {str(err)[-2000:]}"}
        log(f"  {key} failed: {results[key]['error']}")
    stage: dict[str, Any] = results[key]
    return stage


def run_many_datasets(scale: Any, work: Path) -> dict[str, Any]:
    """bench/many_datasets.py in a child process on its own AIRFLOW_HOME (fresh interpreter)."""
    home = fresh_home(work, "many_home")
    args = {
        "datasets": scale.parse_datasets,
        "parse_reps": scale.parse_reps,
        "status_requests": scale.status_requests,
    }
    try:
        return run_child("bench.many_datasets", args, home)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def run(scale: Any, work: Path, results: dict[str, Any], log: Callable[[str], None]) -> None:
    """The at-scale stages: the wide table, the thousand datasets, then snapshots."""
    from bench import wide

    log(f"[wide] ClickBench-like wide table, {scale.wide_rows:,} rows: ours vs DuckDB CTAS, same settings")
    guarded(results, "wide", log, lambda: wide.interleaved(work, scale.wide_rows, scale.reps, log))
    log(f"[many] DAG file with {scale.parse_datasets:,} datasets; GET /v1/datasets?status=true")
    many = guarded(results, "many_datasets", log, lambda: run_many_datasets(scale, work))
    if "error" not in many:
        log(
            f"  parse all: {many['parse_all']['median_s']} s ({many['parse_all']['dags']} DAGs); "
            f"one task's parse: {many['parse_one_task']['median_s']} s "
            f"({many['parse_one_task']['dags']} DAGs); "
            f"status p50: {many.get('status', {}).get('p50_ms')} ms"
        )
    from bench import snapshots

    log(f"[snapshots] {scale.snapshot_rows:,}-row full refresh, its publish, a bootstrap from it")
    snap = guarded(
        results, "snapshots", log, lambda: snapshots.run(scale.snapshot_rows, scale.reps, work / "snapshots")
    )
    if "error" not in snap:
        log(
            f"  refresh {snap['refresh_seconds']} s, publish {snap['publish_seconds']} s, "
            f"bootstrap {snap['bootstrap_seconds']} s"
        )
    from bench import engines

    log(f"[engines] {scale.engine_rows:,}-row full refresh into PostgreSQL and SQLite vs their bare limits")
    eng = guarded(results, "engines", log, lambda: engines.run(scale.engine_rows, scale.reps))
    if "error" not in eng:
        log(
            f"  postgres {eng['postgres_full_s']} s vs adbc_ingest {eng['postgres_adbc_ingest_s']} s; "
            f"sqlite {eng['sqlite_full_s']} s vs executemany {eng['sqlite_executemany_s']} s"
        )


def summary(results: dict[str, Any]) -> dict[str, float | None]:
    wide = results.get("wide", {})
    wide_med = wide.get("median_s", {})
    ours, duck = wide_med.get("ours"), wide_med.get("duckdb_ctas_unordered")
    many = results.get("many_datasets", {})
    snap = results.get("snapshots", {})
    return {
        "wide_full_vs_duckdb": round(ours / duck, 4) if ours and duck else None,
        "wide_rows_per_s_per_core": wide.get("rows_per_s_per_core"),
        "parse_1000_datasets_s": many.get("parse_all", {}).get("median_s"),
        "datasets_status_p50_ms_1000": many.get("status", {}).get("p50_ms"),
        "snapshot_publish_overhead": snap.get("snapshot_publish_overhead"),
        "bootstrap_vs_refresh": snap.get("bootstrap_vs_refresh"),
        "postgres_full_vs_adbc_ingest": results.get("engines", {}).get("postgres_full_vs_adbc_ingest"),
        "sqlite_full_vs_executemany": results.get("engines", {}).get("sqlite_full_vs_executemany"),
    }
