"""docker-compose.yaml and Dockerfile, checked by structure (Docker does not run on this machine)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from _compose_topology import (
    IMAGE_AIRFLOW_HOME,
    PATH_SETTINGS,
    SERVICE_URL_SETTINGS,
    SHARED_SETTINGS,
    interpolated_default,
    load_compose,
    native_env,
    native_path,
    users,
)

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yaml"
DOCKERFILE = REPO / "Dockerfile"

FAB = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
AIRFLOW_SERVICES = (
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker-1",
    "airflow-worker-2",
    "airflow-init",
)
LONG_RUNNING = (*(s for s in AIRFLOW_SERVICES if s != "airflow-init"), "postgres", "redis")
WORKERS = ("airflow-worker-1", "airflow-worker-2")
# Services that read the spicepod or write DuckDB files: all must see the same files.
SHARED_MOUNT_SERVICES = (
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    *WORKERS,
)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    # The same loader as the native topology test (safe_load resolves the "<<" merge keys).
    return load_compose()


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "environment must be a mapping (so the common anchor can merge)"
    return {str(k): str(v) for k, v in env.items()}


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> source of each volume."""
    mounts: dict[str, str] = {}
    for volume in service.get("volumes", []):
        # Split on colons outside "${VAR:-default}" interpolations.
        source, target, *_ = re.split(r":(?![^{]*\})", volume)
        mounts[target] = source
    return mounts


def test_all_services_present(services: dict[str, Any]) -> None:
    """Official topology: postgres, redis, api-server, scheduler, dag-processor, triggerer, 2 workers, init"""
    for name in (*AIRFLOW_SERVICES, "postgres", "redis"):
        assert name in services, name
    workers = [name for name, svc in services.items() if svc.get("command") == "celery worker"]
    assert sorted(workers) == list(WORKERS)


def test_every_airflow_service_shares_the_common_environment(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    """Each Airflow service carries every variable of x-airflow-common's environment, unchanged."""
    common = _env(compose["x-airflow-common"])
    for name in AIRFLOW_SERVICES:
        env = _env(services[name])
        missing = {k for k in common if k not in env}
        assert not missing, f"{name} lacks {missing}"
        # As in the official file, init never installs extra packages at start-up.
        allowed = {"_PIP_ADDITIONAL_REQUIREMENTS"} if name == "airflow-init" else set()
        changed = {k for k in common if env[k] != common[k]} - allowed
        assert not changed, f"{name} overrides {changed}"


def test_celery_postgres_redis_and_fab(compose: dict[str, Any]) -> None:
    """CeleryExecutor on Redis, PostgreSQL metadata database, FAB auth manager, no example DAGs."""
    env = _env(compose["x-airflow-common"])
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CORE__AUTH_MANAGER"] == FAB
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://")
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "false"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"


def test_spicepod_and_data_on_volumes_mounted_identically(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    """The spicepod and the DuckDB data dir are on volumes every reader and writer mounts at the same path."""
    env = _env(compose["x-airflow-common"])
    spicepod = Path(env["AIRFLOW__ACCEL__SPICEPOD_PATH"])
    data_dir = Path(env["AIRFLOW__ACCEL__DATA_DIR"])
    reference = _mounts(services["airflow-scheduler"])
    spicepod_mount = next(t for t in reference if spicepod.is_relative_to(t))
    data_mount = next(t for t in reference if data_dir.is_relative_to(t))
    for name in (*SHARED_MOUNT_SERVICES, "airflow-init"):
        mounts = _mounts(services[name])
        assert mounts.get(spicepod_mount) == reference[spicepod_mount], name
        assert mounts.get(data_mount) == reference[data_mount], name
        assert mounts.get("/opt/airflow/dags") == reference["/opt/airflow/dags"], name
    # Named volumes (declared at the top level) rather than per-container storage.
    for source in (reference[spicepod_mount], reference[data_mount]):
        assert source in compose["volumes"], source


def test_health_checks_on_long_running_services(services: dict[str, Any]) -> None:
    """Every long-running service has a health check; the scheduler's uses its health server."""
    for name in LONG_RUNNING:
        check = services[name].get("healthcheck")
        assert check and check.get("test"), name
        assert services[name].get("restart") == "always", name
    assert "8974/health" in " ".join(services["airflow-scheduler"]["healthcheck"]["test"])
    env = _env(services["airflow-scheduler"])
    assert env["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"] == "true"


def test_start_order(services: dict[str, Any]) -> None:
    """Airflow services wait for healthy postgres/redis and a finished init; workers also for the API."""
    for name in AIRFLOW_SERVICES:
        deps = services[name]["depends_on"]
        assert deps["postgres"]["condition"] == "service_healthy", name
        assert deps["redis"]["condition"] == "service_healthy", name
        if name != "airflow-init":
            assert deps["airflow-init"]["condition"] == "service_completed_successfully", name
    for name in WORKERS:
        assert services[name]["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy"


def test_init_migrates_creates_admin_and_seeds_the_demo(services: dict[str, Any]) -> None:
    """airflow-init migrates the DB, creates the FAB admin, and renders the demo spicepod only if missing."""
    init = services["airflow-init"]
    env = _env(init)
    assert env["_AIRFLOW_DB_MIGRATE"] == "true"
    assert env["_AIRFLOW_WWW_USER_CREATE"] == "true"
    assert env["_AIRFLOW_WWW_USER_USERNAME"].endswith("admin}")
    script = "\n".join(init["command"])
    assert "airflow_provider_accel.demo.taxi" in script
    assert "if [[ ! -f /opt/accel/spicepod/spicepod.yaml ]]" in script
    assert "/opt/accel/templates/spicepod.yaml" in script


def test_image_is_built_from_the_dockerfile(compose: dict[str, Any], services: dict[str, Any]) -> None:
    """Every Airflow service runs the image built from ./Dockerfile."""
    common = compose["x-airflow-common"]
    assert common["build"]["dockerfile"] == "Dockerfile"
    for name in AIRFLOW_SERVICES:
        assert services[name]["image"] == common["image"], name
        assert services[name]["build"] == common["build"], name


def test_dockerfile_installs_the_provider_on_the_official_image() -> None:
    """FROM apache/airflow:3.3.x, the provider installed with requirements.lock as constraints."""
    text = DOCKERFILE.read_text()
    assert re.search(r"^ARG AIRFLOW_IMAGE=apache/airflow:3\.3\.\d+$", text, re.M)
    assert re.search(r"^FROM \$\{AIRFLOW_IMAGE\}$", text, re.M)
    assert "--constraint /opt/accel/src/requirements.lock" in text
    assert '"apache-airflow==${AIRFLOW_VERSION}"' in text
    assert '"/opt/accel/src[fab,postgres]"' in text
    # Every path the Dockerfile copies exists in the repository (requirements.lock may still be
    # in progress elsewhere; it is checked separately once present).
    for source in ("pyproject.toml", "README.md", "airflow_provider_accel", "examples/demo/spicepod.yaml"):
        assert (REPO / source).exists(), source
        assert source in text


def test_demo_spicepod_template_parses() -> None:
    """The template that airflow-init and demo.sh render is a valid spicepod with two accelerated datasets."""
    from airflow_provider_accel.spicepod.loader import parse_spicepod

    raw = (REPO / "examples/demo/spicepod.yaml").read_text().replace("{DEMO_DATA}", "/opt/accel/data/demo")
    pod = parse_spicepod(yaml.safe_load(raw))
    assert [d.name for d in pod.accelerated_datasets] == ["taxi_trips", "taxi_trips_append"]
    assert [d.name for d in pod.datasets if not d.accelerated] == ["taxi_trips_federated"]


# -- the native production-shape test (test_production_topology.py) runs these settings -----------

NATIVE_ROOT = Path("/native-root")


def _native(compose: dict[str, Any]) -> dict[str, str]:
    return native_env(
        compose,
        root=NATIVE_ROOT,
        postgres=("127.0.0.1", 5432, "postgres", "accel_topology_x"),
        redis=("127.0.0.1", 6379, 5),
        api=("127.0.0.1", 18080),
    )


def test_compose_has_every_setting_the_native_topology_uses(compose: dict[str, Any]) -> None:
    """Each key the native topology takes from x-airflow-common exists there, and nothing there is unused."""
    env = _env(compose["x-airflow-common"])
    for key in (*SHARED_SETTINGS, *PATH_SETTINGS, *SERVICE_URL_SETTINGS):
        assert key in env, key
    _native(compose)  # raises on a compose setting the native topology neither keeps nor replaces


def test_native_topology_runs_the_compose_settings(compose: dict[str, Any]) -> None:
    """Executor, auth manager, pool and concurrency verbatim; spicepod and data dir at the same paths."""
    env, native = _env(compose["x-airflow-common"]), _native(compose)
    for key in SHARED_SETTINGS:
        assert native[key] == env[key], key
    assert native["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert native["AIRFLOW__CORE__AUTH_MANAGER"] == FAB
    # The same container paths, under the native root: spicepod, data dir, and the shared config.
    for key in PATH_SETTINGS:
        assert native[key] == str(NATIVE_ROOT / env[key].lstrip("/")), key
    assert native["AIRFLOW_HOME"] == str(native_path(NATIVE_ROOT, IMAGE_AIRFLOW_HOME))
    assert Path(native["AIRFLOW__ACCEL__DATA_DIR"]).is_relative_to(
        native_path(NATIVE_ROOT, "/opt/accel/data")
    )
    # Service URLs keep their scheme (driver) and change only host, port and database.
    for key in SERVICE_URL_SETTINGS:
        assert native[key].split("://")[0] == env[key].split("://")[0], key
    assert native["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == (
        "postgresql+psycopg2://postgres@127.0.0.1:5432/accel_topology_x"
    )
    assert native["AIRFLOW__CELERY__BROKER_URL"] == "redis://:@127.0.0.1:6379/5"
    assert native["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:18080/execution/"


def test_config_file_and_airflow_home_are_on_the_shared_config_mount(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    """AIRFLOW_CONFIG (secrets every process shares) is on the config mount under the image's AIRFLOW_HOME."""
    config = Path(_env(compose["x-airflow-common"])["AIRFLOW_CONFIG"])
    assert config.parent == Path(IMAGE_AIRFLOW_HOME) / "config"
    for name in AIRFLOW_SERVICES:
        assert str(config.parent) in _mounts(services[name]), name


def test_pool_capacity_matches_the_workers(compose: dict[str, Any], services: dict[str, Any]) -> None:
    """The default pool's slots equal the workers' total concurrency (2 workers x WORKER_CONCURRENCY)."""
    env = _env(compose["x-airflow-common"])
    concurrency = int(env["AIRFLOW__CELERY__WORKER_CONCURRENCY"])
    slots = int(env["AIRFLOW__CORE__DEFAULT_POOL_TASK_SLOT_COUNT"])
    assert concurrency >= 1
    assert slots == concurrency * len(WORKERS)


def test_init_creates_the_fab_admin_and_viewer(services: dict[str, Any]) -> None:
    """airflow-init creates an Admin and a Viewer user; the native test logs in as both."""
    accounts = users({"services": services})
    assert accounts == {"Admin": ("admin", "admin"), "Viewer": ("viewer", "viewer")}
    script = "\n".join(services["airflow-init"]["command"])
    assert "airflow users create --role Viewer" in script
    assert '--username "$${_ACCEL_VIEWER_USERNAME}"' in script


# -- the dataset accelerated into PostgreSQL, readable from outside the containers -----------------


def _rendered_demo_spicepod() -> str:
    """The spicepod airflow-init writes: the demo template, then the postgres dataset appended."""
    demo = "/opt/accel/data/demo"
    parts = ("examples/demo/spicepod.yaml", "examples/demo/spicepod.postgres.yaml")
    return "\n".join((REPO / part).read_text().replace("{DEMO_DATA}", demo) for part in parts)


def test_accel_postgres_is_its_own_server_published_to_the_host(services: dict[str, Any]) -> None:
    """accel-postgres is not the metadata DB, keeps a volume, and publishes 5432 on a host port."""
    server = services["accel-postgres"]
    env = _env(server)
    assert env["POSTGRES_DB"] == "accel" != _env(services["postgres"])["POSTGRES_DB"]
    [published] = server["ports"]
    host_port, container_port = re.split(r":(?![^{]*\})", published)
    assert container_port == "5432" and interpolated_default(host_port) == "5433"
    assert "/var/lib/postgresql/data" in _mounts(server)
    assert "pg_isready" in " ".join(server["healthcheck"]["test"])
    for name in WORKERS:  # the refreshes run there
        assert services[name]["depends_on"]["accel-postgres"]["condition"] == "service_healthy", name


def test_documented_psql_command_matches_the_server() -> None:
    """The header's psql URI uses accel-postgres's user, password, database and published port."""
    header = COMPOSE.read_text().split("\n---\n", 1)[0]
    assert (
        "psql postgresql://accel:accel@localhost:5433/accel -c 'SELECT count(*) FROM demo.taxi_trips_pg'"
        in header
    )


def test_init_appends_the_postgres_dataset_and_the_image_ships_it(services: dict[str, Any]) -> None:
    """airflow-init appends the postgres dataset's template, which the Dockerfile copies into the image."""
    script = "\n".join(services["airflow-init"]["command"])
    appended = r"/opt/accel/templates/spicepod\.postgres\.yaml \\\s+>> /opt/accel/spicepod/spicepod\.yaml"
    assert re.search(appended, script)
    dockerfile = DOCKERFILE.read_text()
    assert "examples/demo/spicepod.postgres.yaml /opt/accel/templates/spicepod.postgres.yaml" in dockerfile


def test_rendered_demo_accelerates_into_the_warehouse_connection(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rendered spicepod's taxi_trips_pg lands in accel-postgres through the compose connection."""
    from airflow_provider_accel.accelerator.engines import hook_for, location
    from airflow_provider_accel.spicepod.loader import parse_spicepod

    pod = parse_spicepod(yaml.safe_load(_rendered_demo_spicepod()), strict=True)
    assert [d.name for d in pod.accelerated_datasets] == ["taxi_trips", "taxi_trips_append", "taxi_trips_pg"]
    dataset = next(d for d in pod.datasets if d.name == "taxi_trips_pg")
    assert dataset.acceleration is not None and dataset.acceleration.engine.value == "postgres"
    conn_id = dataset.acceleration.params["postgres_conn_id"]
    uri = _env(compose["x-airflow-common"])[f"AIRFLOW_CONN_{conn_id.upper()}"]
    server = _env(compose["services"]["accel-postgres"])
    assert (
        uri == f"postgres://{server['POSTGRES_USER']}:{server['POSTGRES_PASSWORD']}@accel-postgres:5432/accel"
    )
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", uri)  # as every Airflow container has it
    assert location(hook_for(dataset), dataset) == "accel-postgres:5432/accel.demo.taxi_trips_pg"
