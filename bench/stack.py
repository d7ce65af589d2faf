"""A real Airflow for the endpoint and end-to-end figures: api-server, scheduler, dag-processor, triggerer.

The same set-up as the e2e tests' fixture (``tests/e2e_stack.py``): a temporary ``AIRFLOW_HOME``,
SQLite metadata DB, LocalExecutor, the simple auth manager, free loopback ports, the project's real
DAG file and the ``accel`` plugin. Each process runs in its own process group; :meth:`Stack.stop`
ends those groups only.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
AIRFLOW_BIN = Path(sys.executable).with_name("airflow")
ADMIN = ("admin", "admin-bench-password")
PROCESSES = ("api-server", "scheduler", "dag-processor", "triggerer")
STARTUP_TIMEOUT = 300.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def airflow_env(home: Path, base_url: str = "http://127.0.0.1:8080", port: int = 8080) -> dict[str, str]:
    """The environment of every Airflow process of the bench (inherited ``AIRFLOW__*`` dropped)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__") and k != "AIRFLOW_HOME"}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")])),
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(home / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__API__BASE_URL": base_url,
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API_AUTH__JWT_SECRET": "accel-bench-jwt-secret-" + "x" * 48,
            "AIRFLOW__API__SECRET_KEY": "accel-bench-secret-key",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__ACCEL__SPICEPOD_PATH": str(home / "spicepod.yaml"),
            "AIRFLOW__ACCEL__DATA_DIR": str(home / "accel"),
        }
    )
    return env


def prepare_home(home: Path, spicepod: str) -> None:
    """DAG file, plugin shim (when the package's entry point is missing), passwords, spicepod."""
    import importlib.metadata

    (home / "dags").mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO_ROOT / "dags" / "accelerated_datasets.py", home / "dags" / "accelerated_datasets.py")
    plugins = home / "plugins"
    plugins.mkdir(exist_ok=True)
    if not any(ep.name == "accel" for ep in importlib.metadata.entry_points(group="airflow.plugins")):
        (plugins / "accel_plugin.py").write_text(
            "from airflow_provider_accel.plugin import AccelerationPlugin  # noqa: F401\n"
        )
    (home / "passwords.json").write_text(json.dumps(dict([ADMIN])))
    (home / "spicepod.yaml").write_text(spicepod)


@dataclass
class Stack:
    home: Path
    base_url: str
    env: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    token: str = ""

    @classmethod
    def start_all(cls, home: Path, spicepod: str) -> Stack:
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        prepare_home(home, spicepod)
        stack = cls(home=home, base_url=base_url, env=airflow_env(home, base_url, port))
        migrate = subprocess.run(
            [str(AIRFLOW_BIN), "db", "migrate"],
            env=stack.env,
            cwd=home,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if migrate.returncode:
            raise RuntimeError(migrate.stdout[-3000:] + migrate.stderr[-3000:])
        try:
            stack.start("api-server", "--port", str(port), "--host", "127.0.0.1", "--workers", "1")
            stack.start("scheduler")
            stack.start("dag-processor")
            stack.start("triggerer")
            stack.wait_healthy()
            response = httpx.post(
                f"{base_url}/auth/token", json={"username": ADMIN[0], "password": ADMIN[1]}, timeout=30
            )
            response.raise_for_status()
            stack.token = response.json()["access_token"]
        except BaseException:
            stack.stop()
            raise
        return stack

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url, headers={"Authorization": f"Bearer {self.token}"}, timeout=60.0, **kwargs
        )

    def start(self, name: str, *args: str) -> None:
        log = open(self.home / f"{name}.log", "wb")  # noqa: SIM115 -- owned by the process
        self.processes[name] = subprocess.Popen(
            [str(AIRFLOW_BIN), name, *args],
            env=self.env,
            cwd=self.home,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def signal(self, name: str, sig: int) -> None:
        """Send ``sig`` to one of our processes' group (e.g. SIGSTOP/SIGCONT the scheduler)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.processes[name].pid, sig)

    def stop(self) -> None:
        for proc in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGCONT)
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for proc in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)

    def log_tail(self, lines: int = 40) -> str:
        out = []
        for name in PROCESSES:
            log = self.home / f"{name}.log"
            if log.exists():
                out.append(
                    f"----- {name} -----\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
                )
        return "\n".join(out)

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            for name, proc in self.processes.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"airflow {name} exited with {proc.returncode}\n{self.log_tail()}")
            try:
                health = httpx.get(f"{self.base_url}/api/v2/monitor/health", timeout=5).json()
                if all(
                    health.get(c, {}).get("status") == "healthy"
                    for c in ("metadatabase", "scheduler", "dag_processor", "triggerer")
                ):
                    return
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(1)
        raise RuntimeError(f"Airflow not healthy after {STARTUP_TIMEOUT}s\n{self.log_tail()}")

    def wait_dag_idle(self, dag_id: str, timeout: float = 300.0) -> None:
        """The DAG is parsed and has no queued or running run (e.g. its initial load is done)."""
        deadline = time.monotonic() + timeout
        with self.client() as client:
            while time.monotonic() < deadline:
                dag = client.get(f"/api/v2/dags/{dag_id}")
                runs = client.get(f"/api/v2/dags/{dag_id}/dagRuns", params={"state": ["queued", "running"]})
                if dag.status_code == 200 and runs.status_code == 200 and runs.json()["total_entries"] == 0:
                    return
                time.sleep(1)
        raise RuntimeError(f"{dag_id} not idle after {timeout}s\n{self.log_tail()}")
