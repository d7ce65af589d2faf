"""What the UI needs from the plugin: the page, its nav entry, ``?details=true`` and trigger-form checks."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_accel.spicepod.overrides import OverridesError, parse_overrides

TAXI = "accelerate_taxi_trips"
BAD_SQL = "SELECT * FROM read_csv('/etc/passwd')"

pytestmark = pytest.mark.usefixtures("clean_runs")


def details(api: Any, role: str = "admin") -> dict[str, Any]:
    response = api.client.get(
        "/v1/datasets", params={"status": "true", "details": "true"}, headers=api.headers(role)
    )
    assert response.status_code == 200, response.text
    return {item["name"]: item for item in response.json()}


def validator_message(body: dict[str, Any]) -> str:
    with pytest.raises(OverridesError) as err:
        parse_overrides(body, "taxi_trips")
    return str(err.value)


def trigger_dag(api: Any, conf: dict[str, Any]) -> Any:
    """Airflow's own trigger route, as the UI's trigger form calls it."""
    return api.client.post(
        f"/api/v2/dags/{TAXI}/dagRuns", json={"logical_date": None, "conf": conf}, headers=api.headers()
    )


def test_page_and_icon_are_served(api):
    """The page is a self-contained HTML file calling /v1; the icon is an SVG."""
    page = api.client.get("/accel/datasets")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "Accelerated Datasets" in page.text and "/v1" in page.text
    icon = api.client.get("/accel/icon.svg")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg")


def test_page_is_an_external_view_in_airflow_nav(api):
    """Airflow's plugin listing offers the page to the UI as an external view under Browse."""
    response = api.client.get("/api/v2/plugins", headers=api.headers())
    assert response.status_code == 200, response.text
    plugin = next(p for p in response.json()["plugins"] if p["name"] == "accel")
    (view,) = plugin["external_views"]
    assert view["href"] == "/accel/datasets"
    assert view["url_route"] == "accelerated-datasets"
    assert view["category"] == "browse" and view["destination"] == "nav"


def test_details_only_when_asked(api):
    """Spice's shape is unchanged without ``details=true``."""
    response = api.client.get("/v1/datasets", params={"status": "true"}, headers=api.headers())
    assert all("acceleration" not in item for item in response.json())


def test_details_of_a_dataset(api):
    """Mode, schedule, DAG and refresh SQL come from the spicepod; no run yet, nothing refreshed."""
    items = details(api)
    taxi = items["taxi_trips"]["acceleration"]
    assert taxi["dag_id"] == TAXI
    assert taxi["refresh_mode"] == "full"
    assert taxi["schedule"] == "on demand"
    assert taxi["can_refresh"] is True
    assert "current_run" not in taxi and "last_refresh" not in taxi
    assert items["Events"]["acceleration"]["refresh_mode"] == "append"
    assert "acceleration" not in items["plain_source"]


def test_viewer_may_not_refresh(api):
    """``can_refresh`` is the auth manager's answer for triggering the dataset's DAG."""
    flags = {
        name: item["acceleration"]["can_refresh"]
        for name, item in details(api, "viewer").items()
        if "acceleration" in item
    }
    assert flags and set(flags.values()) == {False}


def _set_run(run_id: str, state: str, xcoms: dict[str, Any]) -> None:
    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import update

    with create_session() as session:
        session.execute(
            update(DagRun).where(DagRun.dag_id == TAXI, DagRun.run_id == run_id).values(state=state)
        )
        for key, value in xcoms.items():
            XComModel.set(
                key=key, value=value, dag_id=TAXI, task_id="refresh", run_id=run_id, session=session
            )


def _post(api: Any, body: dict[str, Any]) -> str:
    response = api.client.post(
        "/v1/datasets/taxi_trips/acceleration/refresh", json=body, headers=api.headers()
    )
    assert response.status_code == 201, response.text
    return response.json()["dag_run_id"]


def test_current_run_and_last_refresh(api):
    """A queued run is the current run; the latest finished one is the last refresh, with its outcome."""
    first = _post(api, {})
    taxi = details(api)["taxi_trips"]["acceleration"]
    assert taxi["current_run"]["dag_run_id"] == first and taxi["current_run"]["state"] == "queued"
    assert "last_refresh" not in taxi
    summary = {"mode": "full", "rows": 42, "bytes": 1000, "duration_ms": 12.5, "total_rows": 42}
    _set_run(first, "success", {"return_value": summary})
    second = _post(api, {"refresh_mode": "append"})
    _set_run(second, "running", {})
    item = details(api)["taxi_trips"]
    taxi = item["acceleration"]
    assert item["status"] == "Refreshing"
    assert taxi["current_run"] == {"dag_run_id": second, "state": "running"} | {
        k: v for k, v in taxi["current_run"].items() if k in ("queued_at", "start_date")
    }
    assert taxi["last_refresh"]["dag_run_id"] == first
    assert taxi["last_refresh"]["rows"] == 42 and taxi["last_refresh"]["duration_ms"] == 12.5
    _set_run(second, "failed", {"error": "boom: the source is gone"})
    taxi = details(api)["taxi_trips"]["acceleration"]
    assert "current_run" not in taxi
    assert taxi["last_refresh"]["dag_run_id"] == second
    assert taxi["last_refresh"]["state"] == "failed"
    assert taxi["last_refresh"]["error"] == "boom: the source is gone"


@pytest.mark.parametrize(
    "conf",
    [{"refresh_sql": BAD_SQL}, {"refresh_sql": "SELECT * FROM other_table"}, {"refresh_jitter_max": "soon"}],
)
def test_trigger_form_refuses_with_the_validators_message(api, db_runs, conf):
    """Airflow's trigger route (the UI form) answers 400 with the validator's message; no run is created."""
    response = trigger_dag(
        api, {"refresh_mode": "full", "refresh_sql": None, "refresh_jitter_max": None} | conf
    )
    assert response.status_code == 400, response.text
    (field,) = conf
    assert response.json()["detail"] == f"Invalid input for param {field}: {validator_message(conf)}"
    assert db_runs(TAXI) == []


def test_trigger_form_accepts_valid_overrides(api, db_runs):
    """Valid values and empty text fields pass the same checks."""
    conf = {
        "refresh_mode": "append",
        "refresh_sql": "SELECT * FROM taxi_trips WHERE tip_amount > 1",
        "refresh_jitter_max": "",
    }
    response = trigger_dag(api, conf)
    assert response.status_code == 200, response.text
    assert [run[2] for run in db_runs(TAXI)] == [conf]
