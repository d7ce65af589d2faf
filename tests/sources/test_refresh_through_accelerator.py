"""End to end: full and append refreshes from PostgreSQL and MySQL through the DuckDB accelerator, with
the accelerated data intact after a failed refresh."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import duckdb
import pytest

from airflow_provider_accel.accelerator import DuckDBAcceleratorHook
from airflow_provider_accel.exceptions import TerminalRefreshError, TransientRefreshError
from airflow_provider_accel.spicepod.model import RefreshMode

from ._helpers import accelerated, mysql_exec, mysql_params, pg_params


def _rows(result_path: str, name: str = "events") -> list[tuple[Any, ...]]:
    with duckdb.connect(result_path, read_only=True) as con:
        return con.execute(f"SELECT id, amount FROM {name} ORDER BY id").fetchall()


def _dataset(from_: str, params: dict[str, Any], mode: RefreshMode = RefreshMode.FULL) -> Any:
    return accelerated(
        from_,
        params,
        name="events",
        time_column="ts",
        acceleration={"refresh_mode": mode, "refresh_append_overlap": dt.timedelta(minutes=1)},
    )


@pytest.fixture
def hook(tmp_path: Path) -> DuckDBAcceleratorHook:
    return DuckDBAcceleratorHook(data_dir=tmp_path / "accel")


class TestPostgres:
    def test_full_then_append_then_failures_keep_data(
        self, hook: DuckDBAcceleratorHook, pg_conn: Any, pg_schema: str
    ) -> None:
        """Full loads all rows; append adds only newer ones; a failed refresh leaves the old data."""
        pg_conn.execute(
            f"CREATE TABLE {pg_schema}.events AS SELECT g AS id, (g * 1.25)::numeric(10,2) AS amount, "
            f"timestamptz '2024-01-01 00:00:00+00' + g * interval '1 hour' AS ts "
            "FROM generate_series(1, 100) g"
        )
        ds = _dataset(f"postgres:{pg_schema}.events", pg_params())
        result = hook.refresh(ds, refresh_sql="SELECT * FROM events WHERE id <= 50")
        assert result.rows == 50
        assert _rows(result.path)[-1] == (50, 62.5)

        pg_conn.execute(
            f"INSERT INTO {pg_schema}.events SELECT g, g * 1.25, "
            f"timestamptz '2024-01-01 00:00:00+00' + g * interval '1 hour' FROM generate_series(101, 110) g"
        )
        appended = hook.refresh(dataclasses.replace(ds), mode=RefreshMode.APPEND)
        # Watermark is id 50's ts (minus 1 minute overlap): ids 51..110 arrive, 50 is an exact duplicate.
        assert appended.rows == 60
        assert len(_rows(appended.path)) == 110

        unreachable = dataclasses.replace(ds, params={**pg_params(), "pg_port": 1})
        with pytest.raises(TransientRefreshError):
            hook.refresh(unreachable)
        pg_conn.execute(f"DROP TABLE {pg_schema}.events")
        with pytest.raises(TerminalRefreshError, match="events"):
            hook.refresh(ds)
        assert len(_rows(appended.path)) == 110


class TestMySQL:
    def test_full_then_append_then_failures_keep_data(
        self, hook: DuckDBAcceleratorHook, mysql_conn: Any, mysql_db: str
    ) -> None:
        """Full loads all rows; append adds only newer ones; a failed refresh leaves the old data."""
        mysql_exec(
            mysql_conn,
            f"CREATE TABLE {mysql_db}.events (id int primary key, amount decimal(10,2), ts datetime(6))",
            f"INSERT INTO {mysql_db}.events SELECT seq, seq * 1.25, "
            f"timestamp'2024-01-01 00:00:00' + interval seq hour FROM {mysql_db}.seq_1_to_100",
        )
        ds = _dataset(f"mysql:{mysql_db}.events", mysql_params())
        result = hook.refresh(ds)
        assert result.rows == 100
        mysql_exec(
            mysql_conn,
            f"INSERT INTO {mysql_db}.events SELECT seq, seq * 1.25, "
            f"timestamp'2024-01-01 00:00:00' + interval seq hour FROM {mysql_db}.seq_101_to_105",
        )
        appended = hook.refresh(ds, mode=RefreshMode.APPEND)
        assert appended.rows == 5
        assert _rows(appended.path)[-1] == (105, 131.25)

        with pytest.raises(TransientRefreshError):
            hook.refresh(dataclasses.replace(ds, params={**mysql_params(), "mysql_tcp_port": 1}))
        with pytest.raises(TerminalRefreshError, match="nope"):
            hook.refresh(dataclasses.replace(ds, from_=f"mysql:{mysql_db}.nope"))
        assert len(_rows(appended.path)) == 105
