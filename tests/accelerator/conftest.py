"""Fixtures of the accelerator tests: a hook writing into a private data directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_accel.accelerator.hook import DuckDBAcceleratorHook

from .engines import ENGINES, EngineUnderTest, engine_under_test


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


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest, data_dir: Path) -> Iterator[EngineUnderTest]:
    """Each accelerator engine in turn (PostgreSQL in a private schema, dropped after the test)."""
    with engine_under_test(request.param, data_dir) as under_test:
        yield under_test
