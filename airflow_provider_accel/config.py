"""The provider's ``[accel]`` configuration section, read through Airflow's configuration."""

from __future__ import annotations

import os
from pathlib import Path

SECTION = "accel"


def _airflow_home() -> str:
    return os.environ.get("AIRFLOW_HOME") or str(Path("~/airflow").expanduser())


def _get(option: str, default: str) -> str:
    # Environment first so that tests and the demo work even before Airflow's config is loaded.
    env = os.environ.get(f"AIRFLOW__{SECTION.upper()}__{option.upper()}")
    if env is not None and env != "":
        value = env
    else:
        try:
            from airflow.configuration import conf

            value = conf.get(SECTION, option, fallback=default) or default
        except Exception:  # Airflow not configured (plain library use)
            value = default
    return value.replace("{AIRFLOW_HOME}", _airflow_home())


def spicepod_path() -> Path:
    """``[accel] spicepod_path``: the spicepod whose accelerated datasets get refresh DAGs."""
    return Path(_get("spicepod_path", "{AIRFLOW_HOME}/spicepod.yaml")).expanduser()


def data_dir() -> Path:
    """``[accel] data_dir``: where datasets without ``params.duckdb_file`` keep their DuckDB files."""
    return Path(_get("data_dir", "{AIRFLOW_HOME}/accel")).expanduser()


def duckdb_conn_id() -> str:
    """``[accel] duckdb_conn_id``: connection with DuckDB settings (memory_limit, threads, temp_directory)."""
    return _get("duckdb_conn_id", "accel_duckdb_default")


def lock_timeout() -> float:
    """``[accel] lock_timeout``: seconds a refresh waits for the file's write lock."""
    return float(_get("lock_timeout", "600"))


def strict_spicepod() -> bool:
    """``[accel] strict_spicepod``: a dataset that cannot be served refuses the whole spicepod."""
    return _get("strict_spicepod", "False").strip().lower() in ("true", "1", "yes", "on")
