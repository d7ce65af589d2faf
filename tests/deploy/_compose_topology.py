"""docker-compose.yaml as the single source of the production topology's settings.

The native production-shape test (test_production_topology.py) builds every Airflow process's
environment from the compose file's ``x-airflow-common`` environment with :func:`native_env`. Only
what cannot be the same outside containers is replaced — service hosts and ports become
127.0.0.1 and this machine's ports, container paths move under a temporary root — and
test_compose.py checks that the compose file still has every key used here, so the two cannot drift.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yaml"

#: AIRFLOW_HOME of the official image (its ENV, not set in the compose file); dags, logs, config
#: and plugins are mounted below it.
IMAGE_AIRFLOW_HOME = "/opt/airflow"

#: Taken verbatim from the compose file: what the native topology must share with it.
SHARED_SETTINGS = (
    "AIRFLOW__CORE__EXECUTOR",
    "AIRFLOW__CORE__AUTH_MANAGER",
    "AIRFLOW__CELERY__WORKER_CONCURRENCY",
    "AIRFLOW__CORE__DEFAULT_POOL_TASK_SLOT_COUNT",
    "AIRFLOW__CORE__LOAD_EXAMPLES",
    "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION",
    "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK",
    "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME",
    "AIRFLOW_CONN_ACCEL_DUCKDB_DEFAULT",
)
#: Container paths, moved under the native root (same layout below it).
PATH_SETTINGS = ("AIRFLOW__ACCEL__SPICEPOD_PATH", "AIRFLOW__ACCEL__DATA_DIR", "AIRFLOW_CONFIG")
#: URLs naming compose services: the same scheme and credentials style, this machine's servers.
SERVICE_URL_SETTINGS = (
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__CELERY__RESULT_BACKEND",
    "AIRFLOW__CELERY__BROKER_URL",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
)
#: Only meaningful to the official image's entrypoint.
IMAGE_ONLY_SETTINGS = ("_PIP_ADDITIONAL_REQUIREMENTS",)
#: The demo's accel-postgres connection: the native topology's spicepod accelerates nothing into it.
DEMO_ONLY_SETTINGS = ("AIRFLOW_CONN_ACCEL_WAREHOUSE",)

_DEFAULT = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*:-(.*)\}$")


def load_compose() -> dict[str, Any]:
    # safe_load resolves the "<<" merge keys, giving each service as Docker Compose sees it.
    return yaml.safe_load(COMPOSE.read_text())


def common_env(compose: dict[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in compose["x-airflow-common"]["environment"].items()}


def interpolated_default(value: str) -> str:
    """``${VAR:-default}`` -> ``default`` (what Compose uses when VAR is unset); other values unchanged."""
    match = _DEFAULT.match(value)
    return match.group(1) if match else value


def users(compose: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """The FAB users airflow-init creates, by role: ``{"Admin": (name, password), "Viewer": ...}``."""
    env = {str(k): str(v) for k, v in compose["services"]["airflow-init"]["environment"].items()}
    return {
        "Admin": (
            interpolated_default(env["_AIRFLOW_WWW_USER_USERNAME"]),
            interpolated_default(env["_AIRFLOW_WWW_USER_PASSWORD"]),
        ),
        "Viewer": (
            interpolated_default(env["_ACCEL_VIEWER_USERNAME"]),
            interpolated_default(env["_ACCEL_VIEWER_PASSWORD"]),
        ),
    }


def native_path(root: Path, container_path: str) -> Path:
    """A container path placed under ``root``: ``/opt/accel/x`` -> ``<root>/opt/accel/x``."""
    path = PurePosixPath(container_path)
    assert path.is_absolute(), container_path
    return root.joinpath(*path.parts[1:])


def _with_netloc(url: str, netloc: str, path: str | None = None) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=netloc, path=parts.path if path is None else path))


def native_env(
    compose: dict[str, Any],
    *,
    root: Path,
    postgres: tuple[str, int, str, str],
    redis: tuple[str, int, int],
    api: tuple[str, int],
) -> dict[str, str]:
    """The compose file's common environment for processes on this machine.

    ``postgres`` is (host, port, user, database), ``redis`` (host, port, db number), ``api`` the
    api-server's (host, port). Every key of ``x-airflow-common.environment`` is either kept as is or
    replaced here, never silently dropped.
    """
    source = common_env(compose)
    known = (
        set(SHARED_SETTINGS)
        | set(PATH_SETTINGS)
        | set(SERVICE_URL_SETTINGS)
        | set(IMAGE_ONLY_SETTINGS)
        | set(DEMO_ONLY_SETTINGS)
    )
    unknown = set(source) - known
    assert not unknown, (
        f"docker-compose.yaml sets {sorted(unknown)}: decide how the native topology uses them"
    )
    env = {key: source[key] for key in SHARED_SETTINGS}
    for key in PATH_SETTINGS:
        env[key] = str(native_path(root, source[key]))
    pg_host, pg_port, pg_user, pg_db = postgres
    pg = f"{pg_user}@{pg_host}:{pg_port}"
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = _with_netloc(
        source["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], pg, f"/{pg_db}"
    )
    env["AIRFLOW__CELERY__RESULT_BACKEND"] = _with_netloc(
        source["AIRFLOW__CELERY__RESULT_BACKEND"], pg, f"/{pg_db}"
    )
    redis_host, redis_port, redis_db = redis
    env["AIRFLOW__CELERY__BROKER_URL"] = _with_netloc(
        source["AIRFLOW__CELERY__BROKER_URL"], f":@{redis_host}:{redis_port}", f"/{redis_db}"
    )
    api_host, api_port = api
    env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] = _with_netloc(
        source["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"], f"{api_host}:{api_port}"
    )
    env["AIRFLOW_HOME"] = str(native_path(root, IMAGE_AIRFLOW_HOME))
    return env
