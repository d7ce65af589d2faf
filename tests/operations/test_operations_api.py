"""Cancel, replace and history routes through Airflow's real api-server app (in process, SQLite DB)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

REFRESH = "/v1/datasets/{}/acceleration/refresh"
HISTORY = "/v1/datasets/{}/acceleration/refreshes"
TAXI = "accelerate_taxi_trips"

pytestmark = pytest.mark.usefixtures("clean_runs")


def post(api: Any, name: str, body: Any = None, role: str = "admin") -> Any:
    return api.client.post(
        REFRESH.format(name),
        content=b"" if body is None else json.dumps(body).encode(),
        headers={**api.headers(role), "Content-Type": "application/json"},
    )


def set_run(dag_id: str, run_id: str, state: str, ti_state: str | None = None) -> None:
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import update

    with create_session() as session:
        session.execute(
            update(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id).values(state=state)
        )
        if ti_state:
            session.execute(
                update(TaskInstance)
                .where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
                .values(state=ti_state)
            )


def set_summary(dag_id: str, run_id: str, summary: dict[str, Any]) -> None:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        XComModel.set(
            key="return_value",
            value=summary,
            dag_id=dag_id,
            task_id="refresh",
            run_id=run_id,
            session=session,
        )


def ti_states(dag_id: str, run_id: str) -> set[str]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(
            select(TaskInstance.state).where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
        ).all()
    return {str(s) for s in rows}


def test_cancel_a_queued_refresh_ends_it_failed_saying_who(api, db_runs):
    """DELETE on a queued run makes it failed, with a note and error naming the user; the status says so."""
    run_id = post(api, "taxi_trips").json()["dag_run_id"]
    response = api.client.delete(f"{REFRESH.format('taxi_trips')}/{run_id}", headers=api.headers("admin"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["outcome"] == "cancelled" and body["cancelled_by"] == "admin" and body["state"] == "failed"
    assert body["message"].startswith("Refresh cancelled by admin")
    assert [r[1] for r in db_runs(TAXI)] == ["failed"]
    assert ti_states(TAXI, run_id) <= {"skipped", "failed"}
    status = api.client.get(f"{REFRESH.format('taxi_trips')}/{run_id}", headers=api.headers()).json()
    assert status["state"] == "failed" and status["error"].startswith("Refresh cancelled by admin")


def test_cancel_a_running_refresh_fails_its_task(api):
    """DELETE on a running run marks its running task failed (Airflow then stops the task process)."""
    run_id = post(api, "taxi_trips").json()["dag_run_id"]
    set_run(TAXI, run_id, "running", ti_state="running")
    response = api.client.delete(f"{REFRESH.format('taxi_trips')}/{run_id}", headers=api.headers("op"))
    assert response.status_code == 200, response.text
    assert ti_states(TAXI, run_id) == {"failed"}


def test_cancel_unknown_finished_and_forbidden(api):
    """404 for an unknown run, 409 for a finished one, 403 for a user who may not trigger."""
    run_id = post(api, "taxi_trips").json()["dag_run_id"]
    url = f"{REFRESH.format('taxi_trips')}/{run_id}"
    assert api.client.delete(url, headers=api.headers("viewer")).status_code == 403
    unknown = api.client.delete(f"{REFRESH.format('taxi_trips')}/nope", headers=api.headers())
    assert unknown.status_code == 404 and "nope" in unknown.json()["message"]
    set_run(TAXI, run_id, "success")
    finished = api.client.delete(url, headers=api.headers())
    assert finished.status_code == 409
    assert "already finished (success)" in finished.json()["message"]


def test_history_lists_the_latest_refreshes_with_summaries(api):
    """GET .../refreshes returns the last N runs newest first with mode, rows, outcome and trigger."""
    first = post(api, "taxi_trips").json()["dag_run_id"]
    set_summary(TAXI, first, {"mode": "full", "rows": 3, "bytes": 99, "duration_ms": 12, "watermark": None})
    set_run(TAXI, first, "success")
    second = post(api, "taxi_trips", {"refresh_sql": "SELECT * FROM taxi_trips LIMIT 1"}).json()["dag_run_id"]
    api.client.delete(f"{REFRESH.format('taxi_trips')}/{second}", headers=api.headers())
    third = post(api, "taxi_trips").json()["dag_run_id"]

    response = api.client.get(
        HISTORY.format("taxi_trips"), params={"limit": 2}, headers=api.headers("viewer")
    )
    assert response.status_code == 200, response.text
    refreshes = response.json()["refreshes"]
    assert [r["dag_run_id"] for r in refreshes] == [third, second]
    assert [r["outcome"] for r in refreshes] == ["queued", "cancelled"]
    assert refreshes[1]["cancelled_by"] == "admin"
    assert refreshes[1]["trigger"] == {"run_type": "manual", "triggered_by": "rest_api", "user": "admin"}

    everything = api.client.get(HISTORY.format("taxi_trips"), headers=api.headers()).json()["refreshes"]
    oldest = everything[-1]
    assert oldest["dag_run_id"] == first and oldest["outcome"] == "success"
    assert (oldest["mode"], oldest["rows"], oldest["bytes"], oldest["duration_ms"]) == ("full", 3, 99, 12)
    bad = api.client.get(HISTORY.format("taxi_trips"), params={"limit": 0}, headers=api.headers())
    assert bad.status_code == 400 and "limit" in bad.json()["message"]


@pytest.fixture
def replace_spicepod(accel_spicepod: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The session's spicepod with taxi_trips set to ``on_demand_refresh: replace``."""
    text = accel_spicepod.read_text().replace(
        "    name: taxi_trips\n    params:\n      file_format: csv\n    acceleration:\n      enabled: true\n",
        "    name: taxi_trips\n    params:\n      file_format: csv\n    acceleration:\n      enabled: true\n"
        "      params:\n        on_demand_refresh: replace\n",
    )
    assert "on_demand_refresh" in text
    path = tmp_path / "spicepod.yaml"
    path.write_text(text)
    monkeypatch.setenv("AIRFLOW__ACCEL__SPICEPOD_PATH", str(path))


def test_replace_cancels_the_active_refresh_and_queues_the_new_one(api, db_runs, replace_spicepod):
    """With on_demand_refresh: replace a second request cancels the running refresh; queue keeps both."""
    first = post(api, "taxi_trips").json()["dag_run_id"]
    set_run(TAXI, first, "running", ti_state="running")
    second = post(api, "taxi_trips")
    assert second.status_code == 201 and second.json()["joined"] is False
    runs = dict((r[0], r[1]) for r in db_runs(TAXI))
    assert runs == {first: "failed", second.json()["dag_run_id"]: "queued"}
    history = api.client.get(HISTORY.format("taxi_trips"), headers=api.headers()).json()["refreshes"]
    assert [r["outcome"] for r in history] == ["queued", "cancelled"]


def test_queue_is_the_default_and_keeps_the_running_refresh(api, db_runs):
    """Without on_demand_refresh a request while a refresh runs is queued behind it."""
    first = post(api, "taxi_trips").json()["dag_run_id"]
    set_run(TAXI, first, "running", ti_state="running")
    assert post(api, "taxi_trips").status_code == 201
    assert [r[1] for r in db_runs(TAXI)] == ["running", "queued"]


def test_invalid_on_demand_refresh_is_a_clear_error(api, accel_spicepod, tmp_path, monkeypatch):
    """A value other than queue or replace answers 409 naming the param and the allowed values."""
    text = accel_spicepod.read_text().replace(
        "    name: taxi_trips\n    params:\n      file_format: csv\n    acceleration:\n      enabled: true\n",
        "    name: taxi_trips\n    params:\n      file_format: csv\n    acceleration:\n      enabled: true\n"
        "      params:\n        on_demand_refresh: sometimes\n",
    )
    path = tmp_path / "spicepod.yaml"
    path.write_text(text)
    monkeypatch.setenv("AIRFLOW__ACCEL__SPICEPOD_PATH", str(path))
    response = post(api, "taxi_trips")
    assert response.status_code == 409
    assert "on_demand_refresh is 'sometimes'" in response.json()["message"]
    assert "'queue'" in response.json()["message"] and "'replace'" in response.json()["message"]


def test_table_route_returns_schema_and_first_rows_to_readers(api, accel_spicepod):
    """GET .../table reads the accelerated file: columns with types, row count and the first rows."""
    import duckdb

    from airflow_provider_accel.accelerator.layout import dataset_file
    from airflow_provider_accel.spicepod.loader import load_spicepod

    dataset = load_spicepod(accel_spicepod).dataset("taxi_trips")
    path = dataset_file(dataset)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    with duckdb.connect(str(path)) as con:
        con.execute(
            "CREATE TABLE taxi_trips AS SELECT range AS trip_id, '<b>' || range AS note FROM range(25)"
        )
    try:
        response = api.client.get(
            "/v1/datasets/taxi_trips/acceleration/table", params={"limit": 3}, headers=api.headers("viewer")
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["columns"] == [{"name": "trip_id", "type": "BIGINT"}, {"name": "note", "type": "VARCHAR"}]
        assert body["total_rows"] == 25 and len(body["rows"]) == 3
        assert sorted(r[1] for r in body["rows"])[0].startswith("<b>")
        assert body["refresh_sql"] == {"sql": None, "origin": "spicepod"}
        assert api.client.get("/v1/datasets/taxi_trips/acceleration/table").status_code == 401
    finally:
        path.unlink(missing_ok=True)
