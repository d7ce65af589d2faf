"""The REST API through Airflow's real api-server app (in process), on a real SQLite metadata DB."""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_accel.spicepod.overrides import (
    OverridesError,
    parse_overrides,
    refresh_sql_variable_key,
)

REFRESH = "/v1/datasets/{}/acceleration/refresh"
TAXI = "accelerate_taxi_trips"
GOOD_SQL = "SELECT * FROM taxi_trips WHERE tip_amount > 10.0"

pytestmark = pytest.mark.usefixtures("clean_runs")


def post(api: Any, name: str, body: Any = None, *, raw: bytes | None = None, role: str = "admin") -> Any:
    content = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
    return api.client.post(
        REFRESH.format(name),
        content=content,
        headers={**api.headers(role), "Content-Type": "application/json"},
    )


def only_message(response: Any) -> str:
    """The body must be exactly {"message": <str>}, JSON."""
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert list(body) == ["message"], body
    assert isinstance(body["message"], str)
    return body["message"]


def expected_override_error(body: Any, dataset: str = "taxi_trips") -> str:
    """The message of the shared validator itself: the API must answer exactly this."""
    with pytest.raises(OverridesError) as err:
        parse_overrides(body, dataset)
    return str(err.value)


def set_run_state(dag_id: str, run_id: str, state: str) -> None:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import update

    with create_session() as session:
        session.execute(
            update(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id).values(state=state)
        )


def set_xcom(dag_id: str, run_id: str, key: str, value: Any) -> None:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        XComModel.set(key=key, value=value, dag_id=dag_id, task_id="refresh", run_id=run_id, session=session)


# --- POST /v1/datasets/{name}/acceleration/refresh: accepted ----------------------------------------


def test_plain_refresh_creates_a_manual_rest_api_run(api, db_runs):
    from airflow.utils.types import DagRunTriggeredByType

    response = post(api, "taxi_trips")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["message"] == "Dataset refresh triggered for taxi_trips."
    assert body["dag_id"] == TAXI
    assert body["state"] == "queued"
    assert body["joined"] is False
    runs = db_runs(TAXI)
    assert len(runs) == 1
    run_id, state, conf, run_type, triggered_by, user = runs[0]
    assert (run_id, state, conf, run_type, user) == (body["dag_run_id"], "queued", {}, "manual", "admin")
    assert triggered_by == str(DagRunTriggeredByType.REST_API)

    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        run = session.scalar(select(DagRun).where(DagRun.run_id == run_id))
        assert run.logical_date is None  # Airflow 3 manual runs without a logical date


def test_name_is_case_insensitive_and_echoed_as_sent(api, db_runs):
    response = post(api, "TAXI_Trips")
    assert response.status_code == 201
    assert response.json()["message"] == "Dataset refresh triggered for TAXI_Trips."
    assert response.json()["dataset"] == "taxi_trips"
    assert len(db_runs(TAXI)) == 1
    # A dataset whose spicepod name has capitals is found by its lowercase name too.
    response = post(api, "events")
    assert response.status_code == 201
    assert response.json()["dag_id"] == "accelerate_events"


@pytest.mark.parametrize(
    "raw", [b"", b"{}", b"null", b"  \n", b'{"refresh_sql": null, "refresh_mode": null}']
)
def test_empty_body_is_a_plain_refresh(api, db_runs, raw):
    response = post(api, "taxi_trips", raw=raw)
    assert response.status_code == 201, response.text
    assert db_runs(TAXI)[0][2] == {}


def test_overrides_become_the_run_conf(api, db_runs):
    body = {"refresh_sql": GOOD_SQL, "refresh_mode": "append", "refresh_jitter_max": "90s"}
    response = post(api, "taxi_trips", body)
    assert response.status_code == 201, response.text
    assert db_runs(TAXI)[0][2] == {
        "refresh_sql": GOOD_SQL,
        "refresh_mode": "append",
        "refresh_jitter_max": "1m30s",
    }


def test_identical_queued_request_joins_its_run(api, db_runs):
    first = post(api, "taxi_trips", {"refresh_mode": "full"}).json()
    second = post(api, "Taxi_Trips", {"refresh_mode": "full"}).json()
    assert second["dag_run_id"] == first["dag_run_id"]
    assert second["joined"] is True
    # A different conf is a different request: its own run.
    other = post(api, "taxi_trips", {"refresh_sql": GOOD_SQL}).json()
    assert other["dag_run_id"] != first["dag_run_id"] and other["joined"] is False
    assert len(db_runs(TAXI)) == 2
    # Once the run started it has read its data: a new request must not be lost in it.
    set_run_state(TAXI, first["dag_run_id"], "running")
    third = post(api, "taxi_trips", {"refresh_mode": "full"}).json()
    assert third["dag_run_id"] != first["dag_run_id"] and third["joined"] is False
    assert len(db_runs(TAXI)) == 3


def test_concurrent_identical_requests_queue_one_run(api, db_runs):
    results: list[Any] = []
    barrier = threading.Barrier(12)

    def worker(i: int) -> None:
        barrier.wait()
        body = {"refresh_mode": "append"} if i % 2 else {}
        results.append((i % 2, post(api, "taxi_trips", body)))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(results) == 12
    assert all(r.status_code == 201 for _, r in results), [r.text for _, r in results]
    by_conf: dict[int, set[str]] = {0: set(), 1: set()}
    for kind, r in results:
        by_conf[kind].add(r.json()["dag_run_id"])
    assert len(by_conf[0]) == 1 and len(by_conf[1]) == 1
    assert by_conf[0] != by_conf[1]
    runs = db_runs(TAXI)
    assert sorted(r[0] for r in runs) == sorted(by_conf[0] | by_conf[1])
    assert sum(r.json()["joined"] is False for _, r in results) == 2


# --- POST: rejected, with the exact message, and no run --------------------------------------------


@pytest.mark.parametrize(
    ("name", "status", "message"),
    [
        ("nope", 404, "Dataset nope not found"),
        ("NoPe_2", 404, "Dataset NoPe_2 not found"),
        ("plain_source", 400, "Dataset plain_source does not have acceleration enabled"),
        ("Disabled_Acc", 400, "Dataset Disabled_Acc does not have acceleration enabled"),
    ],
)
def test_unknown_or_not_accelerated_dataset(api, db_runs, name, status, message):
    response = post(api, name, {"refresh_mode": "full"})
    assert response.status_code == status
    assert only_message(response) == message


BAD_BODIES = [
    [1, 2],
    "full",
    42,
    {"refresh_sql": 5},
    {"refresh_sql": ["SELECT 1"]},
    {"refresh_mode": 1},
    {"refresh_jitter_max": 10},
    {"unknown": 1},
    {"refresh_sql": GOOD_SQL, "extra": True},
    {"refresh_mode": "turbo"},
    {"refresh_mode": "changes"},
    {"refresh_mode": "caching"},
    {"refresh_mode": "disabled"},
    {"refresh_jitter_max": "soon"},
    {"refresh_jitter_max": "10"},
    {"refresh_sql": "SELECT * FROM read_csv('/etc/passwd')"},
    {"refresh_sql": "SELECT * FROM taxi_trips; DROP TABLE taxi_trips"},
    {"refresh_sql": "SELECT * FROM other_table"},
    {"refresh_sql": "ATTACH '/tmp/x.db' AS x"},
    {"refresh_sql": "COPY taxi_trips TO '/tmp/out.csv'"},
    {"refresh_sql": "SELECT * FROM taxi_trips WHERE trip_id IN (SELECT id FROM secrets)"},
]


@pytest.mark.parametrize("body", BAD_BODIES, ids=[json.dumps(b)[:40] for b in BAD_BODIES])
def test_invalid_overrides_are_400_with_the_validators_message(api, db_runs, body):
    response = post(api, "taxi_trips", body)
    assert response.status_code == 400, response.text
    assert only_message(response) == expected_override_error(body)
    assert db_runs(TAXI) == []


def test_messages_say_what_is_wrong(api, db_runs):
    assert only_message(post(api, "taxi_trips", {"refresh_mode": "changes"})) == (
        "refresh_mode 'changes' cannot be refreshed on demand; use one of full, append."
    )
    assert only_message(post(api, "taxi_trips", {"foo": 1})) == (
        "Unknown field(s) foo; allowed fields are refresh_sql, refresh_mode, refresh_jitter_max."
    )
    assert "table functions" in only_message(
        post(api, "taxi_trips", {"refresh_sql": "SELECT * FROM read_parquet('x')"})
    )


@pytest.mark.parametrize("raw", [b"{", b'{"refresh_mode": "full",}', b"refresh_mode=full", b"\xff\xfe"])
def test_malformed_json_is_400(api, db_runs, raw):
    response = post(api, "taxi_trips", raw=raw)
    assert response.status_code == 400
    assert only_message(response).startswith("The request body is not valid JSON: ")
    assert db_runs(TAXI) == []


def test_paused_dag_is_409_with_how_to_unpause(api, db_runs):
    response = post(api, "paused_ds")
    assert response.status_code == 409
    message = only_message(response)
    assert "accelerate_paused_ds" in message and "paused" in message
    assert "airflow dags unpause accelerate_paused_ds" in message
    assert db_runs("accelerate_paused_ds") == []


def test_dag_not_parsed_yet_is_503_retry(api):
    response = post(api, "late_ds")
    assert response.status_code == 503
    assert only_message(response) == (
        "The refresh DAG accelerate_late_ds of dataset late_ds has not been parsed by Airflow yet; "
        "retry in a few seconds."
    )
    assert response.headers["retry-after"] == "10"


def test_stale_dag_is_503(api, db_runs):
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import update

    def stale(value: bool) -> None:
        with create_session() as session:
            session.execute(update(DagModel).where(DagModel.dag_id == TAXI).values(is_stale=value))

    stale(True)
    try:
        response = post(api, "taxi_trips")
    finally:
        stale(False)
    assert response.status_code == 503
    assert "has not been parsed" in only_message(response)
    assert db_runs(TAXI) == []


def test_unexpected_error_is_500_without_details(api, db_runs, monkeypatch, caplog):
    from airflow_provider_accel.plugin.api import service

    def boom(**_: Any) -> None:
        raise RuntimeError("password=hunter2 in /secret/path")

    monkeypatch.setattr(service, "trigger_refresh", boom)
    with caplog.at_level(logging.ERROR):
        response = post(api, "taxi_trips")
    assert response.status_code == 500
    assert only_message(response) == "Unexpected internal error occurred while processing refresh"
    assert "hunter2" not in response.text
    assert "hunter2" in caplog.text  # the details are in the api-server log


def test_invalid_spicepod_is_500_and_logged(api, monkeypatch, caplog):
    from airflow_provider_accel.plugin.api import datasets

    def broken() -> None:
        raise datasets.SpicepodUnavailable("The spicepod /x is invalid: boom")

    monkeypatch.setattr(datasets, "current_spicepod", broken)
    monkeypatch.setattr("airflow_provider_accel.plugin.api.routes.current_spicepod", broken)
    with caplog.at_level(logging.ERROR):
        refresh = post(api, "taxi_trips")
        listing = api.client.get("/v1/datasets", headers=api.headers())
    assert refresh.status_code == 500
    assert only_message(refresh) == "Unexpected internal error occurred while processing refresh"
    assert listing.status_code == 500
    assert only_message(listing) == "Unexpected internal error occurred while processing the request"
    assert "boom" in caplog.text


# --- GET /v1/datasets/{name}/acceleration/refresh/{dag_run_id} -------------------------------------


def test_refresh_status_follows_the_run(api):
    run_id = post(api, "taxi_trips", {"refresh_sql": GOOD_SQL}).json()["dag_run_id"]
    url = f"{REFRESH.format('Taxi_Trips')}/{run_id}"
    status = api.client.get(url, headers=api.headers("viewer"))
    assert status.status_code == 200, status.text
    body = status.json()
    assert body["state"] == "queued" and body["dag_run_id"] == run_id and body["dag_id"] == TAXI
    assert body["conf"] == {"refresh_sql": GOOD_SQL}
    assert body["message"] == "Refresh of dataset taxi_trips is queued."

    set_run_state(TAXI, run_id, "running")
    assert api.client.get(url, headers=api.headers()).json()["state"] == "running"

    summary = {
        "dataset": "taxi_trips",
        "mode": "full",
        "rows": 1234,
        "bytes": 306810,
        "duration_ms": 46.0,
        "watermark": None,
        "total_rows": 1234,
    }
    set_xcom(TAXI, run_id, "return_value", summary)
    set_run_state(TAXI, run_id, "success")
    body = api.client.get(url, headers=api.headers()).json()
    assert body["state"] == "success"
    assert (body["rows"], body["bytes"], body["duration_ms"], body["mode"]) == (1234, 306810, 46.0, "full")
    assert body["error"] is None


def test_refresh_status_of_a_failure_has_the_error(api):
    run_id = post(api, "taxi_trips").json()["dag_run_id"]
    url = f"{REFRESH.format('taxi_trips')}/{run_id}"
    set_xcom(TAXI, run_id, "error", "Binder Error: column tip does not exist")
    set_run_state(TAXI, run_id, "failed")
    body = api.client.get(url, headers=api.headers()).json()
    assert body["state"] == "failed"
    assert body["error"] == "Binder Error: column tip does not exist"
    assert body["rows"] is None


def test_refresh_status_of_a_failure_without_error_xcom(api):
    run_id = post(api, "taxi_trips").json()["dag_run_id"]
    set_run_state(TAXI, run_id, "failed")
    body = api.client.get(f"{REFRESH.format('taxi_trips')}/{run_id}", headers=api.headers()).json()
    assert body["state"] == "failed"
    assert "see the task logs" in body["error"]


def test_refresh_status_unknown_run_is_404(api):
    run_id = post(api, "events").json()["dag_run_id"]
    # The run exists, but of another dataset's DAG.
    response = api.client.get(f"{REFRESH.format('taxi_trips')}/{run_id}", headers=api.headers())
    assert response.status_code == 404
    assert only_message(response) == f"Refresh {run_id} not found for dataset taxi_trips"
    response = api.client.get(f"{REFRESH.format('nope')}/{run_id}", headers=api.headers())
    assert response.status_code == 404
    assert only_message(response) == "Dataset nope not found"


# --- GET /v1/datasets ------------------------------------------------------------------------------


def test_list_datasets_in_spice_shape(api):
    response = api.client.get("/v1/datasets", headers=api.headers("viewer"))
    assert response.status_code == 200
    items = {item["name"]: item for item in response.json()}
    assert set(items) == {"taxi_trips", "Events", "paused_ds", "plain_source", "disabled_acc", "late_ds"}
    taxi = items["taxi_trips"]
    assert set(taxi) == {"from", "name", "replication_enabled", "acceleration_enabled"}
    assert taxi["from"].startswith("file:") and taxi["from"].endswith("taxi_trips.csv")
    assert taxi["acceleration_enabled"] is True and taxi["replication_enabled"] is False
    assert items["plain_source"]["acceleration_enabled"] is False
    assert items["disabled_acc"]["acceleration_enabled"] is False


def test_list_datasets_with_status(api):
    def statuses() -> dict[str, str]:
        response = api.client.get("/v1/datasets", params={"status": "true"}, headers=api.headers())
        assert response.status_code == 200
        return {item["name"]: item["status"] for item in response.json()}

    assert statuses() == {
        "taxi_trips": "Initializing",
        "Events": "Initializing",
        "paused_ds": "Initializing",
        "late_ds": "Initializing",
        "plain_source": "Disabled",
        "disabled_acc": "Disabled",
    }
    taxi = post(api, "taxi_trips").json()["dag_run_id"]
    events = post(api, "events").json()["dag_run_id"]
    assert statuses()["taxi_trips"] == "Refreshing"
    set_run_state(TAXI, taxi, "running")
    set_run_state("accelerate_events", events, "failed")
    assert statuses()["taxi_trips"] == "Refreshing"
    assert statuses()["Events"] == "Error"
    set_run_state(TAXI, taxi, "success")
    # A succeeded run is Ready only with a readable file (this assertion used to pass without one).
    with accelerated_file("taxi_trips"):
        assert statuses()["taxi_trips"] == "Ready"
        # The latest run decides: a new queued run makes it Refreshing again.
        post(api, "taxi_trips", {"refresh_mode": "append"})
        assert statuses()["taxi_trips"] == "Refreshing"


@contextlib.contextmanager
def accelerated_file(name: str) -> Iterator[Path]:
    """Refresh the dataset into its real DuckDB file for the test; remove the file afterwards."""
    from airflow_provider_accel.accelerator.hook import DuckDBAcceleratorHook
    from airflow_provider_accel.spicepod.store import current_spicepod

    dataset = current_spicepod().dataset(name)
    assert dataset is not None
    hook = DuckDBAcceleratorHook(lock_timeout=5)
    hook.refresh(dataset)
    path = hook.dataset_path(dataset)
    try:
        yield path
    finally:
        for leftover in path.parent.glob(path.name + "*"):
            leftover.unlink()


def test_status_is_error_for_a_file_damaged_after_its_refresh(api):
    """A succeeded dataset whose file was damaged or deleted since is Error, saying what to do."""

    def taxi() -> dict[str, Any]:
        response = api.client.get("/v1/datasets", params={"status": "true"}, headers=api.headers())
        assert response.status_code == 200
        return next(item for item in response.json() if item["name"] == "taxi_trips")

    run_id = post(api, "taxi_trips").json()["dag_run_id"]
    set_run_state(TAXI, run_id, "success")
    with accelerated_file("taxi_trips") as path:
        assert taxi()["status"] == "Ready" and "error" not in taxi()
        size = path.stat().st_size
        with path.open("r+b") as f:  # damage every block after the file's headers, after the refresh
            f.seek(3 * 4096)
            f.write(b"\xff" * (size - 3 * 4096))
        damaged = taxi()
        assert damaged["status"] == "Error"
        assert (
            str(path) in damaged["error"]
            and "/v1/datasets/taxi_trips/acceleration/refresh" in damaged["error"]
        )
        path.unlink()
        missing = taxi()
        assert missing["status"] == "Error" and "is missing" in missing["error"]
    with accelerated_file("taxi_trips"):  # the next refresh rebuilds it
        assert taxi()["status"] == "Ready"


def test_list_bad_query_is_400_message(api):
    response = api.client.get("/v1/datasets", params={"status": "maybe"}, headers=api.headers())
    assert response.status_code == 400
    assert only_message(response).startswith("Invalid request: ")


# --- PATCH /v1/datasets/{name}/acceleration --------------------------------------------------------


def variable(key: str) -> str | None:
    from airflow.models.variable import Variable

    return Variable.get(key, default_var=None)


def patch(api: Any, name: str, body: Any, role: str = "admin", raw: bytes | None = None) -> Any:
    return api.client.patch(
        f"/v1/datasets/{name}/acceleration",
        content=raw if raw is not None else json.dumps(body).encode(),
        headers={**api.headers(role), "Content-Type": "application/json"},
    )


def test_patch_refresh_sql_is_validated_and_persisted(api):
    key = refresh_sql_variable_key("taxi_trips")
    response = patch(api, "Taxi_Trips", {"refresh_sql": GOOD_SQL})
    assert response.status_code == 200, response.text
    assert response.json()["refresh_sql"] == GOOD_SQL
    assert response.json()["dataset"] == "taxi_trips"
    assert variable(key) == GOOD_SQL

    bad = {"refresh_sql": "SELECT * FROM read_csv('/etc/passwd')"}
    response = patch(api, "taxi_trips", bad)
    assert response.status_code == 400
    assert only_message(response) == expected_override_error(bad)
    assert variable(key) == GOOD_SQL  # unchanged

    response = patch(api, "taxi_trips", {"refresh_sql": None})
    assert response.status_code == 200 and response.json()["refresh_sql"] is None
    assert variable(key) is None
    patch(api, "taxi_trips", {"refresh_sql": GOOD_SQL})
    response = patch(api, "taxi_trips", {"refresh_sql": ""})
    assert response.status_code == 200
    assert variable(key) is None


@pytest.mark.parametrize(
    ("name", "body", "status", "message"),
    [
        ("nope", {"refresh_sql": GOOD_SQL}, 404, "Dataset nope not found"),
        (
            "plain_source",
            {"refresh_sql": GOOD_SQL},
            400,
            "Dataset plain_source does not have acceleration enabled",
        ),
        ("taxi_trips", {}, 400, "refresh_sql is required: the new SQL, or null to clear it."),
        (
            "taxi_trips",
            {"refresh_sql": GOOD_SQL, "x": 1},
            400,
            "Unknown field(s) x; the only field is refresh_sql.",
        ),
        (
            "taxi_trips",
            [GOOD_SQL],
            400,
            'The request body must be a JSON object such as {"refresh_sql": "SELECT ..."}.',
        ),
        ("taxi_trips", {"refresh_sql": 3}, 400, "refresh_sql must be a string or null; got int."),
    ],
)
def test_patch_errors(api, name, body, status, message):
    response = patch(api, name, body)
    assert response.status_code == status
    assert only_message(response) == message
    assert variable(refresh_sql_variable_key("taxi_trips")) is None


def test_patch_malformed_json(api):
    response = patch(api, "taxi_trips", None, raw=b"{nope")
    assert response.status_code == 400
    assert only_message(response).startswith("The request body is not valid JSON")


# --- Security --------------------------------------------------------------------------------------

ROUTES = [
    ("POST", REFRESH.format("taxi_trips"), b"{}"),
    ("GET", "/v1/datasets", None),
    ("GET", "/v1/datasets?status=true", None),
    ("GET", REFRESH.format("taxi_trips") + "/manual__x", None),
    ("PATCH", "/v1/datasets/taxi_trips/acceleration", b'{"refresh_sql": null}'),
    ("POST", REFRESH.format("nope"), b"{}"),
]


@pytest.mark.parametrize(("method", "url", "content"), ROUTES)
def test_every_route_needs_an_authenticated_user(api, db_runs, method, url, content):
    response = api.client.request(method, url, content=content)
    assert response.status_code == 401
    assert only_message(response) == "Not authenticated"
    response = api.client.request(method, url, content=content, headers={"Authorization": "Bearer not-a-jwt"})
    assert response.status_code in (401, 403)  # Airflow answers an invalid JWT with 403
    only_message(response)
    assert db_runs(TAXI) == []


@pytest.mark.parametrize(
    ("role", "post_status", "patch_status"),
    [("viewer", 403, 403), ("user", 201, 200), ("op", 201, 200), ("admin", 201, 200)],
)
def test_roles(api, db_runs, role, post_status, patch_status):
    response = post(api, "taxi_trips", role=role)
    assert response.status_code == post_status, response.text
    if post_status == 403:
        assert only_message(response) == "Forbidden"
        assert db_runs(TAXI) == []
    else:
        assert db_runs(TAXI)[0][5] == role  # triggering user recorded
    assert patch(api, "taxi_trips", {"refresh_sql": None}, role=role).status_code == patch_status
    assert api.client.get("/v1/datasets", headers=api.headers(role)).status_code == 200
    # A user without access learns nothing about which datasets exist.
    if post_status == 403:
        assert post(api, "nope", role=role).status_code == 403


# --- Miscellaneous ---------------------------------------------------------------------------------


def test_unknown_route_and_method_answer_message(api):
    response = api.client.get("/v1/nope", headers=api.headers())
    assert response.status_code == 404
    assert only_message(response) == "Not Found"
    response = api.client.delete(REFRESH.format("taxi_trips"), headers=api.headers())
    assert response.status_code == 405
    only_message(response)


def test_openapi_document_matches_the_contract(api):
    response = api.client.get("/v1/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    schemas = doc["components"]["schemas"]

    message = schemas["MessageResponse"]
    assert message["type"] == "object" and message["required"] == ["message"]
    assert message["properties"]["message"]["type"] == "string"

    overrides = schemas["RefreshOverrides"]
    assert overrides["type"] == "object"
    assert not overrides.get("required")
    props = overrides["properties"]
    assert set(props) == {"refresh_sql", "refresh_mode", "refresh_jitter_max"}
    for field in ("refresh_sql", "refresh_jitter_max"):
        assert {t.get("type") for t in props[field]["anyOf"]} == {"string", "null"}
    mode_types = props["refresh_mode"]["anyOf"]
    assert {"type": "null"} in mode_types
    ref = next(t["$ref"] for t in mode_types if "$ref" in t).rsplit("/", 1)[-1]
    assert set(schemas[ref]["enum"]) == {"disabled", "full", "append", "changes", "caching", "snapshot"}

    operation = doc["paths"]["/v1/datasets/{name}/acceleration/refresh"]["post"]
    assert operation["operationId"] == "post_dataset_refresh"
    assert operation["parameters"][0]["name"] == "name" and operation["parameters"][0]["in"] == "path"
    body_schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body_schema == {"$ref": "#/components/schemas/RefreshOverrides"}
    for code in ("201", "400", "404", "500"):
        assert code in operation["responses"]
    for code in ("400", "404", "500"):
        schema = operation["responses"][code]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/MessageResponse"}
    created = operation["responses"]["201"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[
        -1
    ]
    assert "message" in schemas[created]["required"]
    assert "422" not in json.dumps(doc["paths"])
    assert {
        "/v1/datasets",
        "/v1/datasets/{name}/acceleration",
        "/v1/datasets/{name}/acceleration/refresh/{dag_run_id}",
    } <= set(doc["paths"])


def test_plugin_import_is_light_and_survives_a_broken_spicepod(tmp_path):
    spicepod = tmp_path / "spicepod.yaml"
    spicepod.write_text("version: v1\nkind: Spicepod\nname: x\ndatasets: [{from: 1}]\n")
    code = (
        "import sys\n"
        "from airflow_provider_accel.plugin import AccelerationPlugin, URL_PREFIX\n"
        "assert AccelerationPlugin.name == 'accel'\n"
        "app = AccelerationPlugin.fastapi_apps[0]\n"
        "assert app['url_prefix'] == '/v1' == URL_PREFIX\n"
        "heavy = [m for m in ('airflow_provider_accel.plugin.api.routes',"
        " 'airflow.api_fastapi.core_api.security',"
        " 'airflow_provider_accel.spicepod.loader', 'duckdb') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    env = {
        **__import__("os").environ,
        "AIRFLOW__ACCEL__SPICEPOD_PATH": str(spicepod),
    }
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
