"""The at-scale stages of ``python -m bench run``: the wide table, the thousand datasets, snapshots.

Kept apart from ``bench/__main__.py`` so that its stages stay as they were; each stage records an
``error`` instead of failing the run, and :func:`summary` gives their keys (None when not measured).
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


def run_many_datasets(scale: Any, work: Path) -> dict[str, Any]:
    """bench/many_datasets.py in a child process on its own AIRFLOW_HOME (fresh interpreter)."""
    from bench.stack import airflow_env

    home = work / "many_home"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    args = {
        "datasets": scale.parse_datasets,
        "parse_reps": scale.parse_reps,
        "status_requests": scale.status_requests,
    }
    proc = subprocess.run(
        [sys.executable, "-m", "bench.many_datasets", json.dumps(args)],
        env=airflow_env(home),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=3600,
    )
    shutil.rmtree(home, ignore_errors=True)
    if proc.returncode != 0:
        raise RuntimeError(f"many-datasets bench failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def run(scale: Any, work: Path, results: dict[str, Any], log: Callable[[str], None]) -> None:
    from bench import wide

    log(f"[wide] ClickBench-like wide table, {scale.wide_rows:,} rows: ours vs DuckDB CTAS, same settings")
    try:
        results["wide"] = wide.interleaved(work, scale.wide_rows, scale.reps, log)
    except Exception as err:
        results["wide"] = {"error": f"{type(err).__name__}: {str(err)[-2000:]}"}
        log(f"  wide failed: {results['wide']['error']}")
    log(f"[many] DAG file with {scale.parse_datasets:,} datasets; GET /v1/datasets?status=true")
    try:
        results["many_datasets"] = run_many_datasets(scale, work)
        many = results["many_datasets"]
        log(
            f"  parse all: {many['parse_all']['median_s']} s ({many['parse_all']['dags']} DAGs); "
            f"one task's parse: {many['parse_one_task']['median_s']} s "
            f"({many['parse_one_task']['dags']} DAGs); "
            f"status p50: {many.get('status', {}).get('p50_ms')} ms"
        )
    except Exception as err:
        results["many_datasets"] = {"error": f"{type(err).__name__}: {str(err)[-2000:]}"}
        log(f"  many datasets failed: {results['many_datasets']['error']}")
    from bench import snapshots

    log(f"[snapshots] {scale.snapshot_rows:,}-row full refresh, its publish, a bootstrap from it")
    try:
        results["snapshots"] = snapshots.run(scale.snapshot_rows, scale.reps, work / "snapshots")
        snap = results["snapshots"]
        log(
            f"  refresh {snap['refresh_seconds']} s, publish {snap['publish_seconds']} s, "
            f"bootstrap {snap['bootstrap_seconds']} s"
        )
    except Exception as err:
        results["snapshots"] = {"error": f"{type(err).__name__}: {str(err)[-2000:]}"}
        log(f"  snapshots failed: {results['snapshots']['error']}")


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
    }
