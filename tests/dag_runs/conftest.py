"""Fixtures for operator and DAG factory tests: a spicepod over local Parquet drops, real Airflow."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def spicepod_env(
    airflow_db: Path, accel_dag_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[[str], Path]:
    """Write a spicepod (YAML body with {src} for the source dir) as the configured one; returns data_dir.

    The spicepod is the test's own file: the session's (tests/api_app.py) stays as the API tests
    left it.
    """
    data_dir = tmp_path / "accel"
    spicepod = tmp_path / "spicepod.yaml"
    monkeypatch.setenv("AIRFLOW__ACCEL__DATA_DIR", str(data_dir))
    monkeypatch.setenv("AIRFLOW__ACCEL__SPICEPOD_PATH", str(spicepod))

    def write(body: str) -> Path:
        spicepod.write_text(textwrap.dedent(body).format(src=tmp_path / "src"))
        return data_dir

    return write


@pytest.fixture
def src_dir(tmp_path: Path) -> Path:
    return tmp_path / "src"
