"""Provider metadata, declared as data (read through the ``apache_airflow_provider`` entry point)."""

from __future__ import annotations

from typing import Any

from airflow_provider_accel import __version__


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-provider-accel",
        "name": "Dataset Acceleration (Spice.ai-compatible)",
        "description": "Spice.ai-style dataset acceleration: spicepod datasets materialised into DuckDB "
        "files, kept fresh by Airflow DAGs, refreshed on demand through Spice's REST API.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Dataset Acceleration",
                "external-doc-url": "https://spiceai.org/docs/features/data-acceleration",
                "tags": ["software"],
            }
        ],
        "hooks": [
            {
                "integration-name": "Dataset Acceleration",
                "python-modules": ["airflow_provider_accel.accelerator.hook"],
            }
        ],
        "operators": [
            {
                "integration-name": "Dataset Acceleration",
                "python-modules": ["airflow_provider_accel.operators.refresh"],
            }
        ],
        "connection-types": [
            {
                "hook-class-name": "airflow_provider_accel.accelerator.hook.DuckDBAcceleratorHook",
                "connection-type": "accel_duckdb",
            }
        ],
        "asset-uris": [
            {
                "schemes": ["accel"],
                "handler": "airflow_provider_accel.operators.assets.sanitize_uri",
                "factory": "airflow_provider_accel.operators.assets.create_asset",
                "to_openlineage_converter": (
                    "airflow_provider_accel.operators.lineage.convert_asset_to_openlineage"
                ),
            }
        ],
        "plugins": [
            {"name": "accel", "plugin-class": "airflow_provider_accel.plugin.AccelerationPlugin"},
        ],
        "config": {
            "accel": {
                "description": "Dataset acceleration: where the spicepod is and where DuckDB files live.",
                "options": {
                    "spicepod_path": {
                        "description": "Path of the spicepod.yaml whose accelerated datasets get a refresh "
                        "DAG each. ``{AIRFLOW_HOME}`` is replaced by the Airflow home directory.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "/opt/airflow/spicepod.yaml",
                        "default": "{AIRFLOW_HOME}/spicepod.yaml",
                    },
                    "data_dir": {
                        "description": "Directory of the DuckDB files of datasets that do not set "
                        "``params.duckdb_file``. ``{AIRFLOW_HOME}`` is replaced by the Airflow home.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "/data/accel",
                        "default": "{AIRFLOW_HOME}/accel",
                    },
                    "duckdb_conn_id": {
                        "description": "Airflow connection (type ``accel_duckdb`` or ``duckdb``) whose extra "
                        "sets DuckDB's ``memory_limit``, ``threads`` and ``temp_directory`` for refreshes. "
                        "Optional: without it DuckDB's own defaults apply.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "accel_duckdb_default",
                        "default": "accel_duckdb_default",
                    },
                    "lock_timeout": {
                        "description": "Seconds a refresh waits for another refresh of the same DuckDB file "
                        "(or a reader holding it) before failing with a transient, retried error.",
                        "version_added": "0.1.0",
                        "type": "integer",
                        "example": "600",
                        "default": "600",
                    },
                    "strict_spicepod": {
                        "description": "When true, a dataset that cannot be served (a bad field, an engine "
                        "or connector not supported, a missing extra) refuses the whole spicepod: the DAG "
                        "file fails with an import error naming it. When false, that dataset alone gets no "
                        "DAG and status Error with its reason, and the others are served, as in Spice.",
                        "version_added": "0.1.0",
                        "type": "boolean",
                        "example": "True",
                        "default": "False",
                    },
                    "api_keys": {
                        "description": "Spice API keys accepted in the ``X-API-Key`` header of the REST API, "
                        "comma-separated, each ``value``, ``value:ro`` (read-only, the default) or "
                        "``value:rw`` (may also trigger refreshes and PATCH). Added to the spicepod's "
                        "``runtime.auth.api-key.keys``. Sensitive: use ``api_keys_cmd`` / "
                        "``api_keys_secret`` to keep it out of airflow.cfg. Empty (and no keys in the "
                        "spicepod): API keys are not accepted and only Airflow's own credentials work.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "sensitive": True,
                        "example": "reporting-key:ro,ci-refresher-key:rw",
                        "default": "",
                    },
                },
            }
        },
    }
