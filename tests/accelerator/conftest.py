"""Fixtures of the accelerator tests: a hook writing into a private data directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_accel.accelerator.hook import DuckDBAcceleratorHook


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def src(tmp_path: Path) -> Path:
    path = tmp_path / "src"
    path.mkdir()
    return path


@pytest.fixture
def hook(data_dir: Path) -> DuckDBAcceleratorHook:
    return DuckDBAcceleratorHook(data_dir=data_dir, lock_timeout=5)
