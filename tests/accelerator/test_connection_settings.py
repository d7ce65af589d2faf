"""DuckDB settings come from the optional accelerator connection (the official DuckDB provider's extras)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_provider_accel.accelerator.hook import DuckDBAcceleratorHook


class TestConnectionSettings:
    def test_missing_default_connection_means_duckdb_defaults(self, tmp_path: Path) -> None:
        """Without an accel_duckdb_default connection a refresh uses DuckDB's defaults, but bounded memory."""
        hook = DuckDBAcceleratorHook(data_dir=tmp_path)
        config = hook.get_connect_config()
        assert "threads" not in config
        # Issue #15: the memory limit and spill directory are derived by default (accelerator/resources.py).
        assert config["memory_limit"].endswith("MiB") and config["temp_directory"].startswith(str(tmp_path))
        assert config["autoinstall_known_extensions"] is False

    def test_connection_extra_sets_memory_threads_and_temp_directory(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """memory_limit, threads and temp_directory in the connection extra reach the DuckDB session."""
        extra = {"memory_limit": "512MB", "threads": 1, "temp_directory": str(tmp_path / "spill")}
        monkeypatch.setenv(
            "AIRFLOW_CONN_ACCEL_DUCKDB_DEFAULT", json.dumps({"conn_type": "accel_duckdb", "extra": extra})
        )
        hook = DuckDBAcceleratorHook(data_dir=tmp_path)
        con = hook.connect(tmp_path / "settings.duckdb")
        try:
            settings = dict(
                con.execute(
                    "SELECT name, value FROM duckdb_settings() "
                    "WHERE name IN ('memory_limit', 'threads', 'temp_directory')"
                ).fetchall()
            )
        finally:
            con.close()
        assert settings["threads"] == "1"
        assert settings["memory_limit"].startswith(("488", "512"))
        assert settings["temp_directory"] == str(tmp_path / "spill")

    def test_named_connection_that_does_not_exist_is_an_error(self, tmp_path: Path) -> None:
        """A connection id given explicitly must exist: no silent fallback to defaults."""
        hook = DuckDBAcceleratorHook("no_such_accel_conn", data_dir=tmp_path)
        with pytest.raises(Exception, match="no_such_accel_conn"):
            hook.get_connect_config()
