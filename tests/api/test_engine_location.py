"""``GET /v1/datasets?status=true`` / ``details=true`` and the table route name each dataset's engine and
where its data lives, through the real api-server app; a PostgreSQL password never appears."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import servers

from airflow_provider_accel.spicepod.store import clear_cache

PASSWORD = "api-s3cret-pw"
CONN_ID = "accel_t_api_warehouse"
ENGINE_DATASETS = """\
  - from: file:{data}/taxi_trips.csv
    name: on_sqlite
    params: {{file_format: csv}}
    acceleration: {{enabled: true, engine: sqlite}}
  - from: file:{data}/taxi_trips.csv
    name: on_pg
    params: {{file_format: csv}}
    acceleration:
      enabled: true
      engine: postgres
      params: {{pg_host: db.example, pg_port: 6543, pg_db: wh, pg_user: u, pg_pass: {password}, pg_schema: s}}
  - from: file:{data}/taxi_trips.csv
    name: on_pg_conn
    params: {{file_format: csv}}
    acceleration:
      enabled: true
      engine: postgres
      params: {{postgres_conn_id: {conn_id}, pg_schema: marts}}
  - from: file:{data}/taxi_trips.csv
    name: on_pg_missing
    params: {{file_format: csv}}
    acceleration:
      enabled: true
      engine: postgres
      params: {{postgres_conn_id: accel_t_api_never_created}}
"""

pytestmark = pytest.mark.usefixtures("clean_runs")


@pytest.fixture
def engine_datasets(
    api: Any, accel_spicepod: Path, airflow_home: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """The session spicepod plus datasets on every engine, and a Postgres connection in the metadata DB."""
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    # `airflow api-server` sets this on import (airflow/api_fastapi/main.py): connections then come
    # from the metadata DB too. The in-process app of the tests is built without that import.
    monkeypatch.setenv("_AIRFLOW_PROCESS_CONTEXT", "server")
    original = accel_spicepod.read_text()
    extra = ENGINE_DATASETS.format(data=airflow_home / "data", password=PASSWORD, conn_id=CONN_ID)
    with create_session() as session:
        session.add(
            Connection(
                conn_id=CONN_ID,
                conn_type="postgres",
                host=servers.PG_HOST,
                port=servers.PG_PORT,
                schema="postgres",
                login=servers.PG_USER,
                password=PASSWORD,
            )
        )
    accel_spicepod.write_text(original + extra)
    clear_cache()
    try:
        yield
    finally:
        accel_spicepod.write_text(original)
        clear_cache()
        with create_session() as session:
            session.query(Connection).filter(Connection.conn_id == CONN_ID).delete()


def _items(api: Any, **params: str) -> dict[str, Any]:
    response = api.client.get("/v1/datasets", params=params, headers=api.headers())
    assert response.status_code == 200, response.text
    assert PASSWORD not in response.text
    return {item["name"]: item for item in response.json()}


def test_status_names_engine_and_location_of_every_engine(api, engine_datasets):
    """properties.engine / location: the file of duckdb and sqlite, host:port/db.schema.table of postgres."""
    data_dir = os.environ["AIRFLOW__ACCEL__DATA_DIR"]
    items = _items(api, status="true")
    assert items["taxi_trips"]["properties"] == {
        "engine": "duckdb",
        "location": str(Path(data_dir) / "taxi_trips.duckdb"),
    }
    assert items["on_sqlite"]["properties"] == {
        "engine": "sqlite",
        "location": str(Path(data_dir) / "on_sqlite.sqlite"),
    }
    assert items["on_pg"]["properties"] == {"engine": "postgres", "location": "db.example:6543/wh.s.on_pg"}
    # The connection lives in the metadata DB: the API server reads its host, never its password.
    assert items["on_pg_conn"]["properties"] == {
        "engine": "postgres",
        "location": f"{servers.PG_HOST}:{servers.PG_PORT}/postgres.marts.on_pg_conn",
    }
    missing = items["on_pg_missing"]["properties"]
    assert missing["engine"] == "postgres" and "location" not in missing
    assert "'accel_t_api_never_created' is not an Airflow connection" in missing["location_error"]
    assert "properties" not in items["plain_source"] and "properties" not in items["disabled_acc"]


def test_plain_list_keeps_spices_shape_and_details_add_properties(api, engine_datasets):
    """Without status/details no properties are added; details=true alone adds them too."""
    assert all("properties" not in item for item in _items(api).values())
    assert _items(api, details="true")["on_pg"]["properties"]["location"] == "db.example:6543/wh.s.on_pg"


def test_table_route_gives_location_or_why_not(api, engine_datasets):
    """The UI's table route names the postgres location, or why it cannot (a missing connection)."""
    servers.require_server("PostgreSQL", servers.PG_HOST, servers.PG_PORT)
    body = api.client.get("/v1/datasets/on_pg_conn/acceleration/table", headers=api.headers())
    assert body.status_code == 200, body.text  # the test server, never refreshed: an empty preview
    assert body.json()["engine"] == "postgres" and body.json()["total_rows"] is None
    assert body.json()["location"] == f"{servers.PG_HOST}:{servers.PG_PORT}/postgres.marts.on_pg_conn"
    assert PASSWORD not in body.text
    missing = api.client.get("/v1/datasets/on_pg_missing/acceleration/table", headers=api.headers())
    assert missing.status_code == 200, missing.text
    assert "is not an Airflow connection" in missing.json()["location_error"]
    assert "location" not in missing.json()


def test_ready_postgres_dataset_is_not_checked_as_a_duckdb_file(api, engine_datasets):
    """The DuckDB file check of Ready does not apply to postgres (no file: it would always say Error)."""
    from airflow_provider_accel.plugin.api import service
    from airflow_provider_accel.plugin.api.datasets import current_spicepod

    dataset = current_spicepod().dataset("on_pg")
    assert dataset is not None and service.file_error(dataset) is None
