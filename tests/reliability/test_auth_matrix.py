"""The auth matrix: every plugin route x {no token, expired, other key, viewer, user, op, admin}, and Spice's
API keys (wrong, ``:ro``, ``:rw``, a key next to a viewer or an expired token) on the same routes.

Run with the simple auth manager in this process, and with the FAB auth manager in a child pytest
process (Airflow picks its auth manager once per process; see tests/api/test_fab_auth.py). Each cell
is asserted against the table below, and every cell is also compared with what Airflow's own
``/api/v2`` answers the same principal for the equivalent operation: same status class, and for the
authentication failures the same status and the same text (Airflow's ``detail`` is our ``message``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ._helpers import report

IN_FAB_CHILD = os.environ.get("ACCEL_TEST_AUTH_MANAGER") == "fab"
DAG = "accelerate_taxi_trips"
PRINCIPALS = ("none", "expired", "other_key", "viewer", "user", "op", "admin")

#: route -> (method, plugin path, body, Airflow's equivalent (method, path, body))
ROUTES: dict[str, tuple[str, str, bytes | None, tuple[str, str, bytes | None]]] = {
    "trigger": (
        "POST",
        "/v1/datasets/taxi_trips/acceleration/refresh",
        b"{}",
        ("POST", f"/api/v2/dags/{DAG}/dagRuns", b'{"logical_date": null}'),
    ),
    "status": (
        "GET",
        "/v1/datasets/taxi_trips/acceleration/refresh/{run_id}",
        None,
        ("GET", f"/api/v2/dags/{DAG}/dagRuns/{{run_id}}", None),
    ),
    "list": ("GET", "/v1/datasets", None, ("GET", "/api/v2/dags", None)),
    "list_status": ("GET", "/v1/datasets?status=true", None, ("GET", "/api/v2/dags", None)),
    "patch_sql": (
        "PATCH",
        "/v1/datasets/taxi_trips/acceleration",
        b'{"refresh_sql": null}',
        ("PATCH", f"/api/v2/dags/{DAG}", b'{"is_paused": false}'),
    ),
}
#: Documentation routes: open to everyone, as Airflow's own /openapi.json and /docs.
OPEN_ROUTES = ("/v1/openapi.json", "/v1/docs")

_AUTH_FAILURES = {
    "none": (401, "Not authenticated"),
    "expired": (401, "Token Expired"),
    "other_key": (403, "Invalid JWT token"),
}
_ALLOWED = {
    "viewer": {"trigger": 403, "status": 200, "list": 200, "list_status": 200, "patch_sql": 403},
    **{
        role: {"trigger": 201, "status": 200, "list": 200, "list_status": 200, "patch_sql": 200}
        for role in ("user", "op", "admin")
    },
}
#: The expected status of every cell (route, principal): the table docs/reliability.md shows.
EXPECTED: dict[tuple[str, str], int] = {
    (route, principal): _AUTH_FAILURES[principal][0]
    if principal in _AUTH_FAILURES
    else _ALLOWED[principal][route]
    for route in ROUTES
    for principal in PRINCIPALS
}


def _bad_tokens(api: Any) -> dict[str, str]:
    """An expired token of the admin, and one with valid claims signed with another key."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.tokens import JWTGenerator

    manager: Any = get_auth_manager()
    if api.auth_manager.endswith("SimpleAuthManager"):
        from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

        admin: Any = SimpleAuthManagerUser(username="admin", role="admin")
    else:
        with manager.flask_app.app_context():
            admin = manager.security_manager.find_user(username="admin")
    expired = manager.generate_jwt(admin, expiration_time_in_seconds=-3600)
    other = JWTGenerator(
        secret_key="another-key-" + "k" * 52, valid_for=3600, audience=manager._get_jwt_audience()
    ).generate(manager.serialize_user(admin))
    return {"expired": expired, "other_key": other}


@pytest.fixture(scope="module")
def matrix_env(api: Any) -> dict[str, Any]:
    tokens = {**api.tokens, **_bad_tokens(api)}
    # A run to read back in the status cells, created by the admin through the plugin.
    created = api.client.post(ROUTES["trigger"][1], content=b"{}", headers=api.headers("admin"))
    assert created.status_code == 201, created.text
    return {"tokens": tokens, "run_id": created.json()["dag_run_id"]}


def _call(api: Any, env: dict[str, Any], principal: str, method: str, path: str, body: bytes | None) -> Any:
    headers = {"Content-Type": "application/json"}
    if principal != "none":
        headers["Authorization"] = f"Bearer {env['tokens'][principal]}"
    path = path.replace("{run_id}", env["run_id"])
    return api.client.request(method, path, content=body, headers=headers)


@pytest.mark.skipif(
    os.environ.get("ACCEL_TEST_AUTH_MANAGER") not in (None, "", "fab"), reason="unknown auth manager"
)
@pytest.mark.parametrize("principal", PRINCIPALS)
@pytest.mark.parametrize("route", list(ROUTES))
def test_auth_cell(api: Any, matrix_env: dict[str, Any], route: str, principal: str) -> None:
    """Each route answers each principal as the table says, and as Airflow's own /api/v2 would."""
    method, path, body, (a_method, a_path, a_body) = ROUTES[route]
    response = _call(api, matrix_env, principal, method, path, body)
    expected = EXPECTED[(route, principal)]
    assert response.status_code == expected, (
        f"{route} as {principal}: {response.status_code} {response.text[:200]}"
    )
    payload = response.json()
    if expected >= 400:
        assert list(payload) == ["message"], payload
    airflow = _call(api, matrix_env, principal, a_method, a_path, a_body)
    assert airflow.status_code // 100 == response.status_code // 100, (
        f"{route} as {principal}: plugin {response.status_code}, "
        f"Airflow {airflow.status_code} {airflow.text[:200]}"
    )
    if principal in _AUTH_FAILURES:
        assert airflow.status_code == response.status_code
        assert airflow.json()["detail"] == payload["message"] == _AUTH_FAILURES[principal][1]


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_documentation_routes_are_open(api: Any, matrix_env: dict[str, Any], principal: str) -> None:
    """The OpenAPI document and Swagger UI answer 200 whatever the credentials, like Airflow's own."""
    for path in OPEN_ROUTES:
        assert _call(api, matrix_env, principal, "GET", path, None).status_code == 200


# -- API-key cells ---------------------------------------------------------------------------------
#
# Spice's API keys next to Airflow's credentials. The rule (docs/api.md): with keys configured, a
# request carrying X-API-Key is judged by the key alone. Spice answers a missing or wrong key 401
# "Unauthorized" and a read-only key on a write route 403 "API key does not allow write access".

KEY_PRINCIPALS = ("wrong_key", "ro_key", "rw_key", "ro_key+viewer", "rw_key+viewer", "rw_key+expired")
_READ_ONLY = {"trigger": 403, "status": 200, "list": 200, "list_status": 200, "patch_sql": 403}
_READ_WRITE = {"trigger": 201, "status": 200, "list": 200, "list_status": 200, "patch_sql": 200}
KEY_EXPECTED: dict[tuple[str, str], int] = {
    (route, principal): 401
    if principal == "wrong_key"
    else (_READ_ONLY if principal.startswith("ro_key") else _READ_WRITE)[route]
    for route in ROUTES
    for principal in KEY_PRINCIPALS
}
KEY_MESSAGES = {401: "Unauthorized", 403: "API key does not allow write access"}
#: Spice's probes: open to everyone (``/v1/status`` needs any valid caller, as in Spice with auth on).
PROBES = {"/health": 200, "/v1/ready": (200, 503), "/v1/status": 200}


@pytest.fixture(scope="module")
def api_keys() -> Any:
    from uuid import uuid4

    keys = {"ro": f"matrix-ro-{uuid4().hex}", "rw": f"matrix-rw-{uuid4().hex}"}
    previous = os.environ.get("AIRFLOW__ACCEL__API_KEYS")
    os.environ["AIRFLOW__ACCEL__API_KEYS"] = f"{keys['ro']}:ro,{keys['rw']}:rw"
    yield keys
    if previous is None:
        os.environ.pop("AIRFLOW__ACCEL__API_KEYS", None)
    else:
        os.environ["AIRFLOW__ACCEL__API_KEYS"] = previous


def _key_headers(env: dict[str, Any], keys: dict[str, str], principal: str) -> dict[str, str]:
    key, _, token = principal.partition("+")
    headers = {"Content-Type": "application/json"}
    headers["X-API-Key"] = {"wrong_key": "not-a-configured-key", "ro_key": keys["ro"], "rw_key": keys["rw"]}[
        key
    ]
    if token:
        headers["Authorization"] = f"Bearer {env['tokens'][token]}"
    return headers


@pytest.mark.skipif(
    os.environ.get("ACCEL_TEST_AUTH_MANAGER") not in (None, "", "fab"), reason="unknown auth manager"
)
@pytest.mark.parametrize("principal", KEY_PRINCIPALS)
@pytest.mark.parametrize("route", list(ROUTES))
def test_api_key_cell(
    api: Any,
    matrix_env: dict[str, Any],
    api_keys: dict[str, str],
    route: str,
    principal: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each route answers each API-key principal as Spice would, and no key shows in the answer or logs."""
    import logging

    caplog.set_level(logging.DEBUG)
    method, path, body, _ = ROUTES[route]
    headers = _key_headers(matrix_env, api_keys, principal)
    response = api.client.request(
        method, path.replace("{run_id}", matrix_env["run_id"]), content=body, headers=headers
    )
    expected = KEY_EXPECTED[(route, principal)]
    assert response.status_code == expected, (
        f"{route} as {principal}: {response.status_code} {response.text[:200]}"
    )
    if expected >= 400:
        assert response.json() == {"message": KEY_MESSAGES[expected]}
    seen = response.text + str(response.headers) + caplog.text
    assert api_keys["ro"] not in seen and api_keys["rw"] not in seen


@pytest.mark.parametrize("principal", [*PRINCIPALS, "ro_key", "wrong_key"])
def test_spice_probes(api: Any, matrix_env: dict[str, Any], api_keys: dict[str, str], principal: str) -> None:
    """/health and /v1/ready answer every caller; /v1/status answers any authenticated caller, else 401."""
    if principal in ("ro_key", "wrong_key"):
        headers = _key_headers(matrix_env, api_keys, principal)
    else:
        headers = (
            {} if principal == "none" else {"Authorization": f"Bearer {matrix_env['tokens'][principal]}"}
        )
    for path, expected in PROBES.items():
        status = api.client.get(path, headers=headers).status_code
        if path == "/v1/status" and principal in ("none", "expired", "other_key", "wrong_key"):
            expected = _AUTH_FAILURES[principal][0] if principal in _AUTH_FAILURES else 401
        assert status in (expected if isinstance(expected, tuple) else (expected,)), (
            f"{path} as {principal}: {status}"
        )


@pytest.mark.slow
@pytest.mark.processes
@pytest.mark.skipif(IN_FAB_CHILD, reason="the parent test; this is the FAB child process")
def test_auth_matrix_with_fab_auth_manager() -> None:
    """The same matrix holds with the FAB auth manager (run in a child pytest process)."""
    repo = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__") and k != "AIRFLOW_HOME"}
    env["ACCEL_TEST_AUTH_MANAGER"] = "fab"
    env["AIRFLOW__CORE__AUTH_MANAGER"] = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            f"{Path(__file__)}",
            "-q",
            "-p",
            "no:cacheprovider",
            "-k",
            "test_auth_cell or test_documentation_routes_are_open or test_api_key_cell or test_spice_probes",
        ],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    cells = (
        len(ROUTES) * len(PRINCIPALS)
        + len(PRINCIPALS)
        + len(ROUTES) * len(KEY_PRINCIPALS)
        + len(PRINCIPALS)
        + 2
    )
    assert f"{cells} passed" in summary, summary
    report("auth-matrix-fab", {"cells_passed": cells})
