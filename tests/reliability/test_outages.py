"""Outages: the PostgreSQL source dies mid-refresh; the metadata database is unreachable during a POST.

The source outage uses a *private* PostgreSQL server started for the test (initdb + pg_ctl as the
unprivileged ``nobody`` user on a free port, in a temporary directory), never the machine's shared
server: it is stopped with ``pg_ctl stop -m immediate`` (like a crash) while the refresh streams rows.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import RetryAction

from airflow_provider_accel.accelerator.hook import DuckDBAcceleratorHook
from airflow_provider_accel.exceptions import TransientRefreshError
from airflow_provider_accel.operators.retry import SpiceRetryPolicy, fibonacci_delay, retries_for
from airflow_provider_accel.spicepod.model import Acceleration, Dataset, RefreshMode
from airflow_provider_accel.testing import free_port

from ._helpers import DUCKDB_CONN_ENV, report, staging_leftovers

PG_ROWS = 1_000_000
MAX_ATTEMPTS = 3  # the dataset's refresh_retry_max_attempts


class PrivatePostgres:
    """A throw-away PostgreSQL server owned by ``nobody`` (initdb refuses to run as root)."""

    def __init__(self) -> None:
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        if not bins:
            pytest.fail("no PostgreSQL server binaries in /usr/lib/postgresql/*/bin for the private server")
        self.bin = Path(bins[-1]).parent
        self.dir = Path(tempfile.mkdtemp(prefix="accel-private-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.dsn = f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"
        if os.geteuid() == 0:
            shutil.chown(self.dir, "nobody", "nogroup")
        self._owner("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")

    def _owner(self, tool: str, *args: str) -> None:
        command = [str(self.bin / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "nobody", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=self.dir)
        assert result.returncode == 0, f"{tool} failed: {result.stdout[-2000:]} {result.stderr[-2000:]}"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._owner("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.dir / "log"), "-w", "start")

    def crash(self) -> None:
        self._owner("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def remove(self) -> None:
        command = [str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "nobody", "--", *command]
        subprocess.run(command, capture_output=True, timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    server.start()
    try:
        yield server
    finally:
        server.remove()


def _pg_dataset(port: int) -> Dataset:
    return Dataset(
        from_="postgres:public.events",
        name="events",
        params={"pg_host": "127.0.0.1", "pg_port": str(port), "pg_db": "postgres", "pg_user": "postgres"},
        acceleration=Acceleration(refresh_mode=RefreshMode.FULL, refresh_retry_max_attempts=MAX_ATTEMPTS),
    )


def _count(hook: DuckDBAcceleratorHook, dataset: Dataset) -> tuple[int, int]:
    from airflow_provider_accel.accelerator.reader import read_dataset

    row = read_dataset(dataset, "SELECT count(*) AS n, sum(id) AS s FROM events", data_dir=hook.data_dir)
    values = row.to_pylist()[0]
    return values["n"], values["s"]


@pytest.mark.slow
@pytest.mark.processes
@pytest.mark.needs_postgres
def test_postgres_source_crash_mid_refresh(
    private_pg: PrivatePostgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Source killed mid-stream: transient, retried per policy, clear error; old data kept; recovery works."""
    import psycopg

    for key, value in DUCKDB_CONN_ENV.items():
        monkeypatch.setenv(key, value)
    with psycopg.connect(private_pg.dsn, autocommit=True) as c:
        c.execute("CREATE TABLE events (id bigint, payload text)")
        c.execute("INSERT INTO events SELECT g, 'old' FROM generate_series(1, 1000) g")
    hook = DuckDBAcceleratorHook(data_dir=tmp_path / "data", lock_timeout=30)
    dataset = _pg_dataset(private_pg.port)
    hook.refresh(dataset)
    old = _count(hook, dataset)
    assert old == (1000, 500500)
    with psycopg.connect(private_pg.dsn, autocommit=True) as c:
        c.execute(f"INSERT INTO events SELECT g, repeat('x', 200) FROM generate_series(1001, {PG_ROWS}) g")

    # Attempt 1: the server crashes while the refresh streams rows into its staging file.
    errors: list[BaseException] = []

    def refresh() -> None:
        try:
            hook.refresh(dataset)
        except BaseException as err:
            errors.append(err)

    thread = threading.Thread(target=refresh)
    thread.start()
    live = hook.dataset_path(dataset)
    # Mid-stream for sure: the server is running the refresh's COPY and the staging file exists.
    streaming = False
    deadline = time.monotonic() + 60
    with psycopg.connect(private_pg.dsn, autocommit=True) as c:
        while not streaming and thread.is_alive() and time.monotonic() < deadline:
            streaming = bool(
                c.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                    "AND query ILIKE '%COPY%events%' AND pid <> pg_backend_pid()"
                ).fetchone()[0]  # type: ignore[index]
            )
            time.sleep(0.02)
    staged_when_killed = bool(staging_leftovers(live))
    private_pg.crash()
    thread.join(timeout=120)
    assert streaming and staged_when_killed and errors, (
        "the server was not stopped in the middle of the refresh"
    )

    # Airflow's retry policy of the refresh task decides, attempt by attempt (the server stays down).
    policy = SpiceRetryPolicy()
    max_tries = retries_for(True, MAX_ATTEMPTS) + 1
    decisions = []
    for attempt in range(1, max_tries + 1):
        error = errors[-1]
        assert isinstance(error, TransientRefreshError), f"attempt {attempt}: {type(error).__name__}: {error}"
        assert "events" in str(error) and str(private_pg.port) in str(error), str(error)
        decision = policy.evaluate(error, attempt, max_tries)
        decisions.append(decision)
        assert _count(hook, dataset) == old, "the failed refresh changed the accelerated data"
        assert staging_leftovers(live) == []
        assert decision.action == RetryAction.RETRY, decision  # transient: the policy retries it...
        low, high = 0.7 * fibonacci_delay(attempt), 1.3 * fibonacci_delay(attempt)
        assert low <= decision.retry_delay.total_seconds() <= high  # type: ignore[union-attr]
        if attempt < max_tries:
            refresh()  # the retry: the server is still down
        # ...and after the last of max_tries attempts Airflow fails the task with this error's message.
    report(
        "outage-postgres-source",
        {
            "rows_streaming": PG_ROWS,
            "attempts": max_tries,
            "errors": [f"{type(e).__name__}: {str(e)[:160]}" for e in errors],
            "retry_delays_s": [round(d.retry_delay.total_seconds(), 2) for d in decisions],
        },
    )

    # The server returns: the next run succeeds.
    private_pg.start()
    result = hook.refresh(dataset)
    assert result.total_rows == PG_ROWS
    assert _count(hook, dataset) == (PG_ROWS, PG_ROWS * (PG_ROWS + 1) // 2)


def test_metadata_db_unreachable_during_post(
    api: Any, airflow_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Metadata DB gone: 500 with the generic message only; back again: the same app serves 201 on its own."""
    from airflow import settings
    from sqlalchemy import create_engine
    from sqlalchemy.orm import scoped_session, sessionmaker
    from sqlalchemy.pool import NullPool

    from airflow_provider_accel.plugin.api.errors import INTERNAL_ERROR, REFRESH_INTERNAL_ERROR

    # The app's sessions go through a path whose directory can vanish (the "network" to the DB):
    # every checkout opens the file anew (NullPool), so removing the link is an outage and
    # restoring it is the server coming back, without touching the app in between.
    link = tmp_path / "db-link"
    link.symlink_to(airflow_home)
    engine = create_engine(f"sqlite:///{link}/airflow.db", poolclass=NullPool)
    factory = sessionmaker(bind=engine, autoflush=False, expire_on_commit=False)
    monkeypatch.setattr(settings, "Session", scoped_session(factory))
    monkeypatch.setattr(settings, "NonScopedSession", factory)
    headers = {**api.headers("admin"), "Content-Type": "application/json"}
    refresh = "/v1/datasets/taxi_trips/acceleration/refresh"
    try:
        assert api.client.post(refresh, content=b"{}", headers=headers).status_code == 201
        link.unlink()  # outage
        outage = [
            (api.client.post(refresh, content=b"{}", headers=headers), REFRESH_INTERNAL_ERROR),
            (api.client.get("/v1/datasets?status=true", headers=headers), INTERNAL_ERROR),
            (api.client.get(f"{refresh}/some_run", headers=headers), INTERNAL_ERROR),
            (
                api.client.patch(
                    "/v1/datasets/taxi_trips/acceleration",
                    content=b'{"refresh_sql": "SELECT * FROM taxi_trips WHERE trip_id > 1"}',
                    headers=headers,
                ),
                INTERNAL_ERROR,
            ),
        ]
        for response, message in outage:
            assert response.status_code == 500, response.text
            assert response.json() == {"message": message}, response.text
            for leak in ("Traceback", "sqlite", str(airflow_home), "OperationalError"):
                assert leak not in response.text
        link.symlink_to(airflow_home)  # the database is back
        recovered = api.client.post(refresh, content=b'{"refresh_mode": "full"}', headers=headers)
        assert recovered.status_code == 201, recovered.text
        assert api.client.get("/v1/datasets?status=true", headers=headers).status_code == 200
    finally:
        settings.Session.remove()
        engine.dispose()
    report("outage-metadata-db", {"requests_during_outage": len(outage), "status": 500, "recovered": True})
