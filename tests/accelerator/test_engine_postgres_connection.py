"""``engine: postgres`` with ``postgres_conn_id``: a real Airflow connection (AIRFLOW_CONN_*), real server."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import servers
import yaml

from airflow_provider_accel.accelerator.engines import hook_for, location
from airflow_provider_accel.exceptions import SpicepodError, TerminalRefreshError
from airflow_provider_accel.operators.lineage import accelerated_naming
from airflow_provider_accel.spicepod.loader import parse_spicepod

from ._helpers import make_dataset, write_parquet
from .engines import EngineUnderTest, engine_under_test

PASSWORD = "c0nn-s3cret"


@pytest.fixture
def postgres(data_dir: Path) -> Any:
    with engine_under_test("postgres", data_dir) as under_test:
        yield under_test


def _connection(monkeypatch: pytest.MonkeyPatch, conn_id: str, **fields: Any) -> None:
    """An Airflow connection as Airflow reads it from the environment (JSON form)."""
    conn = {
        "conn_type": "postgres",
        "host": servers.PG_HOST,
        "port": servers.PG_PORT,
        "login": servers.PG_USER,
        "password": PASSWORD,  # the test server trusts local users: accepted, never needed
        "schema": "postgres",
        "extra": {"sslmode": "disable"},
        **fields,
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))


def _on_connection(postgres: EngineUnderTest, src: Path, **params: Any) -> Any:
    """A dataset accelerated into the test schema, its server named only by ``params``."""
    path = write_parquet(src / "ids.parquet", pa.table({"id": pa.array(range(5), pa.int64())}))
    dataset = make_dataset("ids", path)
    assert dataset.acceleration is not None
    acceleration = dataclasses.replace(
        dataset.acceleration, engine=postgres.on(dataset).acceleration.engine, params=params
    )
    return dataclasses.replace(dataset, acceleration=acceleration)


def test_refresh_reads_the_server_from_the_airflow_connection(
    postgres: EngineUnderTest, src: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """With only postgres_conn_id the refresh lands on the connection's server; no password is shown."""
    _connection(monkeypatch, "accel_t_pg_engine")
    dataset = _on_connection(
        postgres, src, postgres_conn_id="accel_t_pg_engine", pg_schema=postgres.pg_schema
    )
    hook = hook_for(dataset, data_dir=postgres.data_dir)
    with caplog.at_level(logging.DEBUG):
        result = hook.refresh(dataset)
    assert result.rows == 5 and postgres.rows(dataset, "count(*)") == [(5,)]
    where = location(hook, dataset)
    assert where == f"{servers.PG_HOST}:{servers.PG_PORT}/postgres.{postgres.pg_schema}.ids"
    namespace, name = accelerated_naming(dataset, postgres.data_dir)
    assert namespace == f"postgres://{servers.PG_HOST}:{servers.PG_PORT}"
    assert name == f"postgres.{postgres.pg_schema}.ids"
    assert PASSWORD not in where + namespace + name + str(result) + caplog.text


def test_explicit_pg_params_override_the_connection(
    postgres: EngineUnderTest, src: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pg_* param wins over the connection's field: a connection on a dead port works with pg_port set."""
    _connection(monkeypatch, "accel_t_pg_dead_port", port=1, schema="accel_no_such_db")
    dataset = _on_connection(
        postgres,
        src,
        postgres_conn_id="accel_t_pg_dead_port",
        pg_port=servers.PG_PORT,
        pg_db="postgres",
        pg_schema=postgres.pg_schema,
    )
    hook = hook_for(dataset, data_dir=postgres.data_dir)
    hook.refresh(dataset)
    assert postgres.rows(dataset, "count(*)") == [(5,)]
    assert location(hook, dataset).startswith(f"{servers.PG_HOST}:{servers.PG_PORT}/postgres.")


def test_missing_connection_is_a_terminal_error_saying_what_to_do(
    postgres: EngineUnderTest, src: Path
) -> None:
    """An unknown connection id fails the dataset at once, naming the id and how to create it."""
    dataset = _on_connection(
        postgres, src, postgres_conn_id="accel_t_no_such_conn", pg_schema=postgres.pg_schema
    )
    with pytest.raises(TerminalRefreshError) as caught:
        hook_for(dataset, data_dir=postgres.data_dir).refresh(dataset)
    message = str(caught.value)
    assert "Dataset ids" in message and "'accel_t_no_such_conn' is not an Airflow connection" in message
    assert "AIRFLOW_CONN_ACCEL_T_NO_SUCH_CONN" in message and "pg_host" in message


def test_connection_of_another_type_is_refused(
    postgres: EngineUnderTest, src: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection that is not a Postgres one is a terminal error naming its type."""
    _connection(monkeypatch, "accel_t_pg_wrong_type", conn_type="mysql")
    dataset = _on_connection(
        postgres, src, postgres_conn_id="accel_t_pg_wrong_type", pg_schema=postgres.pg_schema
    )
    with pytest.raises(
        TerminalRefreshError, match="'mysql' connection; engine postgres needs a postgres one"
    ):
        hook_for(dataset, data_dir=postgres.data_dir).refresh(dataset)


def test_server_refusal_through_a_connection_keeps_the_password_out(
    postgres: EngineUnderTest, src: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection naming an unknown database fails terminally, its password in no message."""
    _connection(monkeypatch, "accel_t_pg_bad_db", schema="accel_no_such_db")
    dataset = _on_connection(
        postgres, src, postgres_conn_id="accel_t_pg_bad_db", pg_schema=postgres.pg_schema
    )
    with pytest.raises(TerminalRefreshError) as caught:
        hook_for(dataset, data_dir=postgres.data_dir).refresh(dataset)
    assert "postgres_conn_id" in str(caught.value) and PASSWORD not in str(caught.value)


def test_pg_pass_placeholder_resolves_at_the_point_of_use(
    postgres: EngineUnderTest, src: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pg_pass: ${secrets:..} resolves in the refresh; the location, which never needs it, does not ask."""
    base = postgres.on(_on_connection(postgres, src))
    assert base.acceleration is not None
    params = {**base.acceleration.params, "pg_pass": "${secrets:accel_t_pg_pass}"}
    dataset = dataclasses.replace(base, acceleration=dataclasses.replace(base.acceleration, params=params))
    hook = hook_for(dataset, data_dir=postgres.data_dir)
    assert location(hook, dataset).endswith(f".{postgres.pg_schema}.ids")  # no secret needed
    with pytest.raises(TerminalRefreshError, match=r"\$\{secrets:accel_t_pg_pass\} cannot be resolved"):
        hook.refresh(dataset)
    monkeypatch.setenv("ACCEL_T_PG_PASS", PASSWORD)
    hook_for(dataset, data_dir=postgres.data_dir).refresh(dataset)
    assert postgres.rows(dataset, "count(*)") == [(5,)]


def load_spicepod_text(text: str, *, strict: bool = False) -> Any:
    return parse_spicepod(yaml.safe_load(text), strict=strict)


SPICEPOD = """\
version: v1
kind: Spicepod
name: pg_conn
datasets:
  - from: file:/data/ids.parquet
    name: ids
    acceleration:
      enabled: true
      engine: postgres
      params: {params}
"""


def test_spicepod_accepts_a_connection_instead_of_pg_host() -> None:
    """postgres_conn_id alone is a complete postgres engine config; with neither the error names both."""
    spicepod = load_spicepod_text(SPICEPOD.format(params="{postgres_conn_id: warehouse}"))
    [dataset] = spicepod.datasets
    assert dataset.acceleration is not None and dataset.acceleration.params == {
        "postgres_conn_id": "warehouse"
    }
    assert not spicepod.notices
    broken = load_spicepod_text(SPICEPOD.format(params="{pg_schema: s}"))
    [error] = broken.dataset_errors
    assert "pg_host" in error.reason and "postgres_conn_id" in error.reason


def test_unknown_connection_id_in_yaml_is_not_a_parse_error() -> None:
    """The DAG processor never looks connections up: the id is checked when the dataset refreshes."""
    spicepod = load_spicepod_text(SPICEPOD.format(params="{postgres_conn_id: not_created_yet}"))
    assert [d.name for d in spicepod.datasets] == ["ids"]
    with pytest.raises(SpicepodError):
        load_spicepod_text(SPICEPOD.format(params="{postgres_conn_id: [not, text]}"), strict=True)
