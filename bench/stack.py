"""A real Airflow for the endpoint and end-to-end figures: the same local deployment as the e2e tests.

:class:`airflow_provider_accel.testing.LocalAirflow` on a temporary ``AIRFLOW_HOME`` (SQLite metadata
DB, LocalExecutor, the simple auth manager, free loopback ports), with the project's real DAG file
and the ``accel`` plugin.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from airflow_provider_accel.testing import LocalAirflow, local_airflow_env, prepare_home
from airflow_provider_accel.testing.local import install_migrated_db

REPO_ROOT = Path(__file__).resolve().parents[1]
DAG_FILE = REPO_ROOT / "dags" / "accelerated_datasets.py"
ADMIN = ("admin", "admin-bench-password")
ROLES = {"admin": "admin"}
SECRET = "accel-bench"
STARTUP_TIMEOUT = 300.0


#: The settings the README recommends for on-demand refreshes (the "On-demand latency" section), as
#: scripts/demo.sh and docker-compose.yaml use them. An idle scheduler sleeps
#: ``scheduler_idle_sleep_time`` (Airflow's default: 1 s) between loops, and only a loop picks up
#: the queued run a POST created. LocalExecutor's workers start from a forkserver that has imported
#: what a refresh task needs (:mod:`airflow_provider_accel.preload`), so each task process, forked
#: from a worker, inherits those imports. ``ACCEL_BENCH_AIRFLOW_DEFAULTS=1`` measures without them.
ON_DEMAND_SETTINGS = {
    "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.1",
    "AIRFLOW__SCHEDULER__MP_START_METHOD": "forkserver",
    "AIRFLOW__SCHEDULER__MP_FORKSERVER_PRELOAD": "airflow_provider_accel.preload",
}


def on_demand_settings() -> dict[str, str]:
    """:data:`ON_DEMAND_SETTINGS`, or none with ``ACCEL_BENCH_AIRFLOW_DEFAULTS=1``."""
    return {} if os.environ.get("ACCEL_BENCH_AIRFLOW_DEFAULTS") == "1" else dict(ON_DEMAND_SETTINGS)


def airflow_env(home: Path, port: int = 8080) -> dict[str, str]:
    """The environment of every Airflow process of the bench (inherited ``AIRFLOW__*`` dropped)."""
    env = local_airflow_env(home, port=port, users=ROLES, secret=SECRET, pythonpath=REPO_ROOT)
    env.update(on_demand_settings())
    return env


def prepare(home: Path, spicepod: str) -> None:
    """DAG file, plugin shim (when the package's entry point is missing), passwords, spicepod."""
    prepare_home(home, dag_file=DAG_FILE, passwords=dict([ADMIN]))
    (home / "spicepod.yaml").write_text(spicepod)


def fresh_metadata_db(home: Path) -> None:
    """An empty, migrated metadata DB in ``home``: a copy of a migrated one when the environment names
    one (the test session's, for the smoke scale), else Airflow's own ``resetdb``."""
    if not install_migrated_db(home / "airflow.db"):
        from airflow.utils import db

        db.resetdb()


class BenchAirflow(LocalAirflow):
    @classmethod
    def launch(cls, home: Path, spicepod: str) -> BenchAirflow:
        """Migrate, start the four processes, wait until healthy, sign the admin in."""
        (home / "spicepod.yaml").write_text(spicepod)
        stack = cls.create(
            home, dag_file=DAG_FILE, passwords=dict([ADMIN]), roles=ROLES, secret=SECRET, pythonpath=REPO_ROOT
        )
        assert isinstance(stack, BenchAirflow)  # create() is a classmethod: cls's own type
        # create() builds the processes' environment afresh (inherited AIRFLOW__* dropped).
        stack.env.update(on_demand_settings())
        try:
            stack.start_all(STARTUP_TIMEOUT)
            stack.tokens["admin"] = stack.token(*ADMIN)
        except BaseException:
            stack.stop()
            raise
        return stack

    def wait_dag_idle(self, dag_id: str, timeout: float = 300.0) -> None:
        """The DAG is parsed and has no queued or running run (e.g. its initial load is done)."""
        deadline = time.monotonic() + timeout
        with self.client(timeout=60) as client:
            while time.monotonic() < deadline:
                dag = client.get(f"/api/v2/dags/{dag_id}")
                runs = client.get(f"/api/v2/dags/{dag_id}/dagRuns", params={"state": ["queued", "running"]})
                if dag.status_code == 200 and runs.status_code == 200 and runs.json()["total_entries"] == 0:
                    return
                time.sleep(1)
        raise RuntimeError(f"{dag_id} not idle after {timeout}s\n{self.log_tail()}")
