"""Session-wide test setup: a private AIRFLOW_HOME with a real SQLite metadata DB, and server probes.

Everything Airflow reads at import time is set here, before any test module imports Airflow.
Tests that need a server (PostgreSQL, MariaDB, ...) call ``servers.require_server``: on a laptop
without it they skip with a loud reason; with ``ACCEL_REQUIRE_SERVICES=1`` (set by ``.ci/run``)
the same absence is a failure.

Shared fixtures are registered here, once for the session: the in-process api-server app
(``api`` and friends, ``tests/api_app.py``), the real Airflow deployment (``airflow_stack``,
``tests/e2e_stack.py``) and a moto S3 server (``moto_s3``, ``tests/servers.py``). Importing them
into a directory's conftest instead would give that
directory its own, second instance of each session fixture.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from api_app import accel_dags, accel_spicepod, api, clean_runs, db_runs  # noqa: F401 - in-process api-server app
from e2e_stack import airflow_stack  # noqa: F401 - one real Airflow deployment for the whole session
from servers import MotoS3, start_moto, stop_moto

_HOME = Path(tempfile.mkdtemp(prefix="accel-test-airflow-home-"))
REPO_ROOT = Path(__file__).resolve().parents[1]

os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_HOME / 'airflow.db'}"
# Tests copy the real DAG file (dags/accelerated_datasets.py) here, see ``install_dag_file``.
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(_HOME / "dags")
os.environ["AIRFLOW__ACCEL__DATA_DIR"] = str(_HOME / "accel")
os.environ["AIRFLOW__ACCEL__SPICEPOD_PATH"] = str(_HOME / "spicepod.yaml")
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO")


@pytest.hookimpl(tryfirst=True)  # before pytest's own -m selection, which reads the markers
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that uses the real Airflow deployment or the moto S3 server starts processes, whatever its
    module's marks say."""
    for item in items:
        if {"airflow_stack", "moto_s3"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.processes)


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoS3]:
    """One moto S3 server for the session (S3 sources, snapshot stores); each user makes its own bucket."""
    server = start_moto()
    try:
        yield server
    finally:
        stop_moto(server)


@pytest.fixture(scope="session")
def airflow_home() -> Path:
    return _HOME


@pytest.fixture(scope="session")
def accel_dag_file() -> Path:
    """The project's real DAG file, installed in the test AIRFLOW_HOME's dags folder as a deployment would."""
    import shutil

    dags_folder = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    dags_folder.mkdir(parents=True, exist_ok=True)
    target = dags_folder / "accelerated_datasets.py"
    shutil.copy(REPO_ROOT / "dags" / "accelerated_datasets.py", target)
    return target


@pytest.fixture(scope="session")
def airflow_db(airflow_home: Path) -> Path:
    """A migrated Airflow metadata database (SQLite) shared by the whole session."""
    from airflow.utils import db

    from airflow_provider_accel.testing.local import MIGRATED_DB_ENV, copy_sqlite_db

    db.resetdb()
    path = airflow_home / "airflow.db"
    pristine = airflow_home / "airflow.migrated.db"
    copy_sqlite_db(path, pristine)
    # Local deployments (the e2e stack) and the bench's children copy it rather than migrate their own.
    os.environ[MIGRATED_DB_ENV] = str(pristine)
    return path


@pytest.fixture(scope="session")
def migrated_airflow_db(airflow_db: Path, airflow_home: Path) -> Callable[[Path], Path]:
    """Give an extra Airflow home a migrated, empty metadata DB: a copy of the session's, taken right
    after its migration (an ``airflow db migrate`` per home costs tens of seconds on 2 cores).

    Call it with the home; it returns the DB path (``<home>/airflow.db``).
    """
    from airflow_provider_accel.testing.local import copy_sqlite_db

    pristine = airflow_home / "airflow.migrated.db"

    def install(home: Path) -> Path:
        target = home / "airflow.db"
        copy_sqlite_db(pristine, target)
        return target

    return install
