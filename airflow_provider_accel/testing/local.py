"""A local Airflow deployment: api-server, scheduler, dag-processor and triggerer on one machine.

SQLite metadata DB, LocalExecutor, the simple auth manager with known passwords, free loopback
ports, the given DAG file and the ``accel`` plugin. Each process runs in its own process group
(see :mod:`airflow_provider_accel.testing.processes`); :meth:`LocalAirflow.stop` ends those only.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import httpx

from airflow_provider_accel.testing.processes import (
    AIRFLOW_BIN,
    free_port,
    log_tail,
    start_airflow,
    stop_process_groups,
    wait_healthy,
)

PROCESSES = ("api-server", "scheduler", "dag-processor", "triggerer")
#: Names a migrated, never-used SQLite metadata DB that a new home copies instead of migrating its own:
#: ``airflow db migrate`` costs tens of seconds on 2 cores, a copy milliseconds. The test session sets
#: it once its own DB is migrated; child processes (the bench's) inherit it. Unset: each home migrates.
MIGRATED_DB_ENV = "ACCEL_MIGRATED_AIRFLOW_DB"
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"


def local_airflow_env(
    home: Path,
    *,
    port: int,
    users: Mapping[str, str],
    secret: str,
    pythonpath: Path | None = None,
) -> dict[str, str]:
    """The environment of every process of a local deployment on ``home``.

    ``users`` maps each simple-auth-manager user to its role; ``secret`` seeds the JWT secret and the
    api secret key, which every process must share (tasks get execution-API tokens signed by the
    scheduler). Inherited ``AIRFLOW__*`` variables and ``AIRFLOW_HOME`` are dropped.
    """
    base_url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__") and k != "AIRFLOW_HOME"}
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(pythonpath), env.get("PYTHONPATH")]))
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(home / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{r}" for u, r in users.items()),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__API__BASE_URL": base_url,
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API_AUTH__JWT_SECRET": f"{secret}-jwt-secret-" + "x" * 48,
            "AIRFLOW__API__SECRET_KEY": f"{secret}-secret-key",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            # Re-parse the spicepod within seconds of a change, heartbeat often: tests wait less.
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__ACCEL__SPICEPOD_PATH": str(home / "spicepod.yaml"),
            "AIRFLOW__ACCEL__DATA_DIR": str(home / "accel"),
        }
    )
    return env


def copy_sqlite_db(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite DB (WAL included), even while another connection holds it open."""
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)


def install_migrated_db(target: Path, environ: Mapping[str, str] = os.environ) -> bool:
    """Copy the DB that :data:`MIGRATED_DB_ENV` names to ``target``; False when none is named."""
    template = environ.get(MIGRATED_DB_ENV)
    if not template or not Path(template).is_file():
        return False
    copy_sqlite_db(Path(template), target)
    return True


def prepare_home(home: Path, *, dag_file: Path, passwords: Mapping[str, str]) -> None:
    """The DAG file, a plugin shim when the package's entry point is missing, the passwords file."""
    (home / "dags").mkdir(parents=True, exist_ok=True)
    shutil.copy(dag_file, home / "dags" / dag_file.name)
    plugins = home / "plugins"
    plugins.mkdir(exist_ok=True)
    if not any(ep.name == "accel" for ep in importlib.metadata.entry_points(group="airflow.plugins")):
        (plugins / "accel_plugin.py").write_text(
            "from airflow_provider_accel.plugin import AccelerationPlugin  # noqa: F401\n"
        )
    (home / "passwords.json").write_text(json.dumps(dict(passwords)))


@dataclass
class LocalAirflow:
    """A local deployment on ``base_url``: its environment, processes and users' bearer tokens."""

    home: Path
    base_url: str
    env: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(
        cls,
        home: Path,
        *,
        dag_file: Path,
        passwords: Mapping[str, str],
        roles: Mapping[str, str],
        secret: str,
        pythonpath: Path | None = None,
    ) -> Self:
        """Prepare ``home`` and migrate its metadata DB (or copy a migrated one); start nothing yet."""
        port = free_port()
        prepare_home(home, dag_file=dag_file, passwords=passwords)
        env = local_airflow_env(home, port=port, users=roles, secret=secret, pythonpath=pythonpath)
        deployment = cls(home=home, base_url=f"http://127.0.0.1:{port}", env=env)
        if install_migrated_db(home / "airflow.db", env):
            return deployment
        migrate = subprocess.run(
            [str(AIRFLOW_BIN), "db", "migrate"],
            env=env,
            cwd=home,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if migrate.returncode:
            output = migrate.stdout[-3000:] + migrate.stderr[-3000:]
            raise RuntimeError(f"airflow db migrate failed:\n{output}")
        return deployment

    @property
    def port(self) -> str:
        return self.env["AIRFLOW__API__PORT"]

    def start(self, name: str, *args: str) -> None:
        """``airflow <name> *args``; the api-server gets this deployment's port and one worker.

        One api-server worker: with SQLite, see airflow_provider_accel.plugin.api.service on locking.
        """
        if name == "api-server" and not args:
            args = ("--port", self.port, "--host", "127.0.0.1", "--workers", "1")
        self.processes[name] = start_airflow(self.home, name, [name, *args], self.env, self.home)

    def start_all(self, timeout: float, names: tuple[str, ...] = PROCESSES) -> None:
        """Start ``names`` and wait until the health endpoint reports each of them healthy."""
        for name in names:
            self.start(name)
        self.wait_healthy(timeout, names)

    def stop_process(self, name: str) -> None:
        """Stop one process (its whole process group), e.g. the scheduler while measuring the API."""
        process = self.processes.pop(name, None)
        if process is not None:
            stop_process_groups([process])

    def stop(self) -> None:
        stop_process_groups(self.processes.values())

    def wait_healthy(self, timeout: float, names: tuple[str, ...] = PROCESSES) -> None:
        components = ["metadatabase"] + [n.replace("-", "_") for n in names if n != "api-server"]
        wait_healthy(self.base_url, self.processes, timeout, describe=self.log_tail, components=components)

    def log_tail(self, lines: int = 60) -> str:
        return log_tail(self.home, PROCESSES, lines)

    def token(self, username: str, password: str) -> str:
        response = httpx.post(
            f"{self.base_url}/auth/token", json={"username": username, "password": password}, timeout=30
        )
        response.raise_for_status()
        token: str = response.json()["access_token"]
        return token

    def client(self, user: str | None = "admin", timeout: float = 30.0) -> httpx.Client:
        """An HTTP client of ``base_url``, signed in as ``user`` (None: no token)."""
        headers = {"Authorization": f"Bearer {self.tokens[user]}"} if user else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)
