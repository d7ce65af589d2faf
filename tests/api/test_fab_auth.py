"""The API's permissions with the FAB auth manager's roles (Viewer, User, Op, Admin, a per-DAG role).

Airflow picks the auth manager when the api-server app is created, once per process, so these tests
run in a child pytest process whose ``api`` fixture builds the app with the FAB auth manager
(``ACCEL_TEST_AUTH_MANAGER=fab``). In the parent process only :func:`test_fab_auth_manager` runs: it
starts the child and fails with its output when a child test fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

IN_CHILD = os.environ.get("ACCEL_TEST_AUTH_MANAGER") == "fab"
REFRESH = "/v1/datasets/{}/acceleration/refresh"
PER_DAG_ROLE = "taxi_trips_only"


@pytest.mark.processes
@pytest.mark.skipif(IN_CHILD, reason="the parent test; this is the child process")
def test_fab_auth_manager() -> None:
    repo = Path(__file__).resolve().parents[2]
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AIRFLOW__") and key != "AIRFLOW_HOME"  # the child makes its own home
    }
    env["ACCEL_TEST_AUTH_MANAGER"] = "fab"
    env["AIRFLOW__CORE__AUTH_MANAGER"] = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(Path(__file__)), "-q", "-p", "no:cacheprovider", "-x"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    # Only the parent test itself may be skipped in the child.
    assert " passed" in summary and "failed" not in summary and "error" not in summary, summary
    assert "1 skipped" in summary or "skipped" not in summary, summary


child = pytest.mark.skipif(not IN_CHILD, reason="runs in the FAB child process (test_fab_auth_manager)")


@pytest.fixture(scope="module")
def fab(api: Any) -> Any:
    """The FAB api env, plus a user whose role may only read, edit and trigger accelerate_taxi_trips."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.providers.fab.www.security import permissions

    assert api.auth_manager.endswith("FabAuthManager")
    manager = get_auth_manager()
    with manager.flask_app.app_context():
        sm = manager.security_manager
        role = sm.find_role(PER_DAG_ROLE) or sm.add_role(PER_DAG_ROLE)
        dag_resource = "DAG:accelerate_taxi_trips"
        for action, resource in [
            (permissions.ACTION_CAN_READ, dag_resource),
            # FAB lets a user create runs of a DAG only with edit permission on that DAG too.
            (permissions.ACTION_CAN_EDIT, dag_resource),
            (permissions.ACTION_CAN_READ, "DAG Run:accelerate_taxi_trips"),
            (permissions.ACTION_CAN_CREATE, "DAG Run:accelerate_taxi_trips"),
            (permissions.ACTION_CAN_READ, permissions.RESOURCE_DAG_RUN),
        ]:
            sm.add_permission_to_role(role, sm.create_permission(action, resource))
        user = sm.find_user(username=PER_DAG_ROLE) or sm.add_user(
            username=PER_DAG_ROLE,
            first_name="t",
            last_name="t",
            email="taxi@example.com",
            role=role,
            password="x",
        )
        api.tokens[PER_DAG_ROLE] = manager.generate_jwt(user)
    return api


def _post(api: Any, name: str, role: str) -> Any:
    return api.client.post(REFRESH.format(name), content=b"{}", headers=api.headers(role))


def _patch(api: Any, name: str, role: str) -> Any:
    return api.client.patch(
        f"/v1/datasets/{name}/acceleration",
        content=json.dumps({"refresh_sql": None}).encode(),
        headers=api.headers(role),
    )


@child
@pytest.mark.usefixtures("clean_runs")
@pytest.mark.parametrize(
    ("role", "post_status", "patch_status", "get_status"),
    [("viewer", 403, 403, 200), ("user", 201, 200, 200), ("op", 201, 200, 200), ("admin", 201, 200, 200)],
)
def test_fab_roles(fab, db_runs, role, post_status, patch_status, get_status):
    response = _post(fab, "taxi_trips", role)
    assert response.status_code == post_status, response.text
    assert list(response.json()) == ["message"] if post_status != 201 else True
    if post_status == 201:
        assert db_runs("accelerate_taxi_trips")[0][5] == role
        run_id = response.json()["dag_run_id"]
        status = fab.client.get(f"{REFRESH.format('taxi_trips')}/{run_id}", headers=fab.headers(role))
        assert status.status_code == 200
    else:
        assert db_runs("accelerate_taxi_trips") == []
    assert _patch(fab, "taxi_trips", role).status_code == patch_status
    assert fab.client.get("/v1/datasets", headers=fab.headers(role)).status_code == get_status


@child
@pytest.mark.usefixtures("clean_runs")
def test_fab_per_dag_permissions(fab, db_runs):
    # Allowed on its own DAG...
    assert _post(fab, "taxi_trips", PER_DAG_ROLE).status_code == 201
    assert _patch(fab, "taxi_trips", PER_DAG_ROLE).status_code == 200
    # ...forbidden on another dataset's DAG.
    response = _post(fab, "events", PER_DAG_ROLE)
    assert response.status_code == 403 and response.json() == {"message": "Forbidden"}
    assert db_runs("accelerate_events") == []
    assert _patch(fab, "events", PER_DAG_ROLE).status_code == 403
    status = fab.client.get(f"{REFRESH.format('events')}/x", headers=fab.headers(PER_DAG_ROLE))
    assert status.status_code == 403
    # The list shows only the accelerated datasets whose DAG the user may read.
    listing = fab.client.get("/v1/datasets", headers=fab.headers(PER_DAG_ROLE))
    if listing.status_code == 200:
        names = {item["name"] for item in listing.json() if item["acceleration_enabled"]}
        assert names == {"taxi_trips"}
    else:  # FAB may require the global DAGs permission for listing
        assert listing.status_code == 403


@child
def test_fab_no_token_is_401(fab):
    response = fab.client.post(REFRESH.format("taxi_trips"), content=b"{}")
    assert response.status_code == 401
    assert response.json() == {"message": "Not authenticated"}
