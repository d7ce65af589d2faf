"""The on-demand latency settings: the demo and the bench run the same ones, and the preload is inert."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from bench.stack import ON_DEMAND_SETTINGS

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_demo_exports_the_settings_the_bench_measures() -> None:
    """scripts/demo.sh exports every on-demand setting of the bench's stack, with the same value."""
    exported = dict(
        re.findall(r"^export (AIRFLOW__\w+)=(\S+)$", (REPO_ROOT / "scripts/demo.sh").read_text(), re.M)
    )
    assert {key: exported.get(key) for key in ON_DEMAND_SETTINGS} == ON_DEMAND_SETTINGS


def test_preload_module_imports_without_side_effects(tmp_path: Path) -> None:
    """Importing the forkserver's preload module starts no thread and creates no metadata database."""
    code = (
        "import threading, airflow_provider_accel.preload as p; "
        "import airflow_provider_accel.operators.refresh, duckdb; "
        "print(threading.active_count())"
    )
    env = {"AIRFLOW_HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "1"
    assert not (tmp_path / "airflow.db").exists()
