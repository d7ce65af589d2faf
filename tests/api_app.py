"""The in-process api-server fixtures: Airflow's real api-server app over a real SQLite metadata DB.

Used by the API tests (tests/api) and the in-process reliability tests (tests/reliability). Like
``airflow_stack`` of ``tests/e2e_stack.py``, the fixtures are registered once, by ``tests/conftest.py``,
so the session-scoped ones (``accel_spicepod``, ``accel_dags``, ``api``) are built once per session
whichever directories run. Test modules request them by name; do not import them into another
conftest, which would make pytest build a second, separate instance there.

The spicepod and its data files are written once per session, the project's real DAG file is
installed by ``tests/conftest.py`` (``accel_dag_file``); the DAGs are parsed into
the metadata DB the way the dag-processor does (``DagBag`` + ``sync_bag_to_db`` into the
``dags-folder`` bundle), and ``airflow.api_fastapi.app.create_app()`` builds the api-server app with
the ``accel`` plugin mounted at ``/v1``.

The auth manager is chosen at app creation: the simple auth manager by default; with
``ACCEL_TEST_AUTH_MANAGER=fab`` (set by ``test_fab_auth.py`` and ``test_auth_matrix.py`` for their
child pytest processes) the FAB one.
"""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
FAB_AUTH_MANAGER = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
#: Role names shared by the simple auth manager and FAB (lowercase here, capitalised in FAB).
ROLES = ("viewer", "user", "op", "admin")


# Datasets of the test spicepod. `late_ds` is added after the DAGs were parsed, so its DAG is never in
# the DB (the 503 case); `paused_ds` gets its DAG paused (the 409 case).
SPICEPOD_TEMPLATE = """\
version: v1
kind: Spicepod
name: api-tests
datasets:
  - from: file:{data}/taxi_trips.csv
    name: taxi_trips
    params:
      file_format: csv
    acceleration:
      enabled: true
      refresh_mode: full
  - from: file:{data}/events.csv
    name: Events
    params:
      file_format: csv
    time_column: ts
    acceleration:
      enabled: true
      refresh_mode: append
  - from: file:{data}/taxi_trips.csv
    name: paused_ds
    params:
      file_format: csv
    acceleration:
      enabled: true
  - from: file:{data}/taxi_trips.csv
    name: plain_source
    params:
      file_format: csv
  - from: file:{data}/taxi_trips.csv
    name: disabled_acc
    params:
      file_format: csv
    acceleration:
      enabled: false
"""
LATE_DATASET = """\
  - from: file:{data}/taxi_trips.csv
    name: late_ds
    params:
      file_format: csv
    acceleration:
      enabled: true
"""


def plugin_installed() -> bool:
    """True when the distribution is installed, so Airflow finds the plugin by its entry point."""
    return any(ep.name == "accel" for ep in importlib.metadata.entry_points(group="airflow.plugins"))


def install_plugin_shim(plugins_folder: Path) -> None:
    """Make Airflow load the plugin from the plugins folder when the package is not installed."""
    if plugin_installed():
        return
    plugins_folder.mkdir(parents=True, exist_ok=True)
    (plugins_folder / "accel_plugin.py").write_text(
        "from airflow_provider_accel.plugin import AccelerationPlugin  # noqa: F401\n"
    )


@dataclass
class ApiEnv:
    """What the tests need: the client, a token per role and helpers on the metadata DB."""

    client: Any
    tokens: dict[str, str]
    auth_manager: str

    def headers(self, role: str = "admin") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


@pytest.fixture(scope="session")
def accel_spicepod(airflow_home: Path) -> Path:
    data = airflow_home / "data"
    data.mkdir(exist_ok=True)
    (data / "taxi_trips.csv").write_text("trip_id,passenger_count,tip_amount\n1,1,5.0\n2,2,12.5\n3,2,0.0\n")
    (data / "events.csv").write_text("id,ts\n1,2024-01-01 00:00:00\n")
    path = Path(os.environ["AIRFLOW__ACCEL__SPICEPOD_PATH"])
    path.write_text(SPICEPOD_TEMPLATE.format(data=data))
    return path


@pytest.fixture(scope="session")
def accel_dags(airflow_db: Path, airflow_home: Path, accel_spicepod: Path, accel_dag_file: Path) -> list[str]:
    """Parse the DAG folder into the metadata DB (as the dag-processor would); return the DAG ids."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import update

    dags_folder = accel_dag_file.parent  # the project's real DAG file, installed by tests/conftest.py
    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(dag_folder=dags_folder, bundle_path=dags_folder, bundle_name="dags-folder")
    assert not bag.import_errors, bag.import_errors
    sync_bag_to_db(bag, "dags-folder", None)
    with create_session() as session:
        session.execute(update(DagModel).values(is_paused=False))
        session.execute(
            update(DagModel).where(DagModel.dag_id == "accelerate_paused_ds").values(is_paused=True)
        )

    # A dataset the spicepod gains after the last parse: known to the API, its DAG not yet in the DB.
    text = accel_spicepod.read_text() + LATE_DATASET.format(data=airflow_home / "data")
    accel_spicepod.write_text(text)
    return sorted(bag.dags)


def _configure_auth(auth_manager: str) -> None:
    from airflow.configuration import conf

    conf.set("core", "auth_manager", auth_manager)
    conf.set("core", "simple_auth_manager_users", ",".join(f"{r}:{r}" for r in ROLES))
    conf.set("core", "simple_auth_manager_all_admins", "False")


def _tokens(auth_manager: str) -> dict[str, str]:
    from airflow.api_fastapi.app import get_auth_manager

    manager = get_auth_manager()
    if auth_manager == SIMPLE_AUTH_MANAGER:
        from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

        return {role: manager.generate_jwt(SimpleAuthManagerUser(username=role, role=role)) for role in ROLES}

    # FAB: one user per built-in role, created the way `airflow users create` does.
    tokens = {}
    with manager.flask_app.app_context():
        security_manager = manager.security_manager
        for role in ROLES:
            user = security_manager.find_user(username=role) or security_manager.add_user(
                username=role,
                first_name=role,
                last_name="test",
                email=f"{role}@example.com",
                role=security_manager.find_role(role.capitalize()),
                password=role,
            )
            assert user, f"could not create FAB user {role}"
            tokens[role] = manager.generate_jwt(user)
    return tokens


@pytest.fixture(scope="session")
def api(airflow_home: Path, accel_dags: list[str]) -> Iterator[ApiEnv]:
    """Airflow's api-server app (``create_app()``), shared by the session, with a token per role."""
    from airflow import plugins_manager
    from fastapi.testclient import TestClient

    auth_manager = (
        FAB_AUTH_MANAGER if os.environ.get("ACCEL_TEST_AUTH_MANAGER") == "fab" else SIMPLE_AUTH_MANAGER
    )
    _configure_auth(auth_manager)
    if auth_manager == FAB_AUTH_MANAGER:
        from airflow.providers.fab.auth_manager.models.db import FABDBManager
        from airflow.utils.session import create_session

        with create_session() as session:
            FABDBManager(session).initdb()

    from airflow import settings

    install_plugin_shim(Path(settings.PLUGINS_FOLDER))
    # Plugins may have been loaded (and cached) before the shim existed, e.g. while parsing DAGs.
    for func in (plugins_manager._get_plugins, plugins_manager.get_fastapi_plugins):
        func.cache_clear()

    from airflow.api_fastapi.app import create_app, purge_cached_app

    purge_cached_app()
    app = create_app()
    with TestClient(app, raise_server_exceptions=False) as client:
        yield ApiEnv(client=client, tokens=_tokens(auth_manager), auth_manager=auth_manager)
    purge_cached_app()


@pytest.fixture
def db_runs() -> Any:
    """A function returning the runs of a DAG as (run_id, state, conf, run_type, triggered_by, user)."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    def runs(dag_id: str) -> list[tuple[Any, ...]]:
        with create_session() as session:
            rows = session.scalars(select(DagRun).where(DagRun.dag_id == dag_id).order_by(DagRun.id))
            return [
                (r.run_id, str(r.state), r.conf, str(r.run_type), str(r.triggered_by), r.triggering_user_name)
                for r in rows
            ]

    return runs


@pytest.fixture
def clean_runs() -> Iterator[None]:
    """Delete every DAG run (and XCom) before and after a test, so tests do not see each other's runs."""

    def wipe() -> None:
        from airflow.models.dagrun import DagRun
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session
        from sqlalchemy import Table, delete

        with create_session() as session:
            # Airflow 3.4 maps XComModel onto a query over its xcom tables, which DELETE cannot
            # target; there its rows go with their DAG runs (foreign keys with ON DELETE CASCADE).
            if isinstance(XComModel.__table__, Table):
                session.execute(delete(XComModel))
            session.execute(delete(DagRun))

    wipe()
    yield
    wipe()
