"""Fixtures of the operations tests: a private spicepod over local files or a PostgreSQL schema."""

from __future__ import annotations

import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from servers import PG_HOST, PG_PORT, PG_USER, require_server

PG_DB = "test"


@pytest.fixture
def spicepod_env(
    airflow_db: Path, accel_dag_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[[str], Path]:
    """Write a spicepod (``{src}`` is the source directory) as the configured one; returns data_dir."""
    data_dir = tmp_path / "accel"
    spicepod = tmp_path / "spicepod.yaml"
    monkeypatch.setenv("AIRFLOW__ACCEL__DATA_DIR", str(data_dir))
    monkeypatch.setenv("AIRFLOW__ACCEL__SPICEPOD_PATH", str(spicepod))

    def write(body: str, **values: Any) -> Path:
        spicepod.write_text(textwrap.dedent(body).format(src=tmp_path / "src", **values))
        return data_dir

    return write


@pytest.fixture
def src_dir(tmp_path: Path) -> Path:
    path = tmp_path / "src"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture
def pg_schema() -> Iterator[tuple[Any, str]]:
    """An autocommit psycopg connection and a PostgreSQL schema with a unique name, dropped afterwards."""
    require_server("PostgreSQL", PG_HOST, PG_PORT)
    import psycopg

    name = f"accel_ops_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=PG_DB, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
        try:
            yield conn, name
        finally:
            conn.execute(f'DROP SCHEMA "{name}" CASCADE')
