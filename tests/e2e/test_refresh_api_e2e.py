"""End to end over HTTP: a real api-server, scheduler, dag-processor and triggerer refresh datasets.

The tests share one :func:`airflow_stack` and run in file order (they build on each other's state:
the initial loads, then on-demand refreshes).
"""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.processes]

TIP_SQL = "SELECT * FROM trips WHERE tip_amount > 10.0"


def source_trips(stack: Any) -> list[tuple[int, int, float]]:
    lines = (stack.source_dir / "trips.csv").read_text().splitlines()[1:]
    return [(int(a), int(b), float(c)) for a, b, c in (line.split(",") for line in lines)]


def accelerated(stack: Any, name: str, sql: str | None = None) -> list[tuple[Any, ...]]:
    """Rows of the dataset's DuckDB file, read the supported way (read-only, waits for a writer)."""
    from airflow_provider_accel.accelerator.reader import read_dataset
    from airflow_provider_accel.spicepod.loader import load_spicepod

    dataset = load_spicepod(stack.spicepod_path).dataset(name)
    table = read_dataset(dataset, sql, data_dir=stack.data_dir)
    return sorted(tuple(row.values()) for row in table.to_pylist())


@pytest.fixture(scope="module")
def stack(airflow_stack: Any) -> Any:
    # The initial loads (the DAGs have no interval: one scheduled load, then on demand) must be over,
    # so that the rows checked below come from the on-demand refreshes.
    for dag_id in ("accelerate_trips", "accelerate_events"):
        airflow_stack.wait_for_idle(dag_id)
    return airflow_stack


def test_plain_refresh(stack):
    triggered = stack.trigger("trips")
    assert triggered["message"] == "Dataset refresh triggered for trips."
    assert triggered["dag_id"] == "accelerate_trips"
    status = stack.wait_for_refresh("trips", triggered["dag_run_id"])
    assert status["state"] == "success", status
    expected = sorted(source_trips(stack))
    assert status["rows"] == len(expected)
    assert accelerated(stack, "trips") == expected


def test_refresh_with_override_sql(stack):
    triggered = stack.trigger("Trips", {"refresh_sql": TIP_SQL})
    status = stack.wait_for_refresh("trips", triggered["dag_run_id"])
    assert status["state"] == "success", status
    expected = sorted(r for r in source_trips(stack) if r[2] > 10.0)
    assert 0 < len(expected) < len(source_trips(stack))
    assert status["rows"] == len(expected)
    assert accelerated(stack, "trips") == expected


def test_refresh_append_adds_only_new_rows(stack):
    # The initial (full) load read drop1: ids 1..10.
    assert [row[0] for row in accelerated(stack, "events")] == list(range(1, 11))
    stack.write_events("drop2", range(11, 16))
    triggered = stack.trigger("events", {"refresh_mode": "append"})
    status = stack.wait_for_refresh("events", triggered["dag_run_id"])
    assert status["state"] == "success", status
    assert status["mode"] == "append"
    ids = [row[0] for row in accelerated(stack, "events")]
    assert ids == list(range(1, 16))  # the new rows once, the old ones not duplicated


def test_patch_refresh_sql_is_used_by_later_refreshes(stack):
    with stack.client() as client:
        response = client.patch(
            "/v1/datasets/trips/acceleration",
            json={"refresh_sql": "SELECT * FROM trips WHERE passenger_count = 2"},
        )
        assert response.status_code == 200, response.text
    status = stack.wait_for_refresh("trips", stack.trigger("trips")["dag_run_id"])
    assert status["state"] == "success", status
    assert accelerated(stack, "trips") == sorted(r for r in source_trips(stack) if r[1] == 2)
    # The run's own override still wins over the PATCHed SQL.
    status = stack.wait_for_refresh("trips", stack.trigger("trips", {"refresh_sql": TIP_SQL})["dag_run_id"])
    assert accelerated(stack, "trips") == sorted(r for r in source_trips(stack) if r[2] > 10.0)
    with stack.client() as client:
        assert client.patch("/v1/datasets/trips/acceleration", json={"refresh_sql": None}).status_code == 200
    status = stack.wait_for_refresh("trips", stack.trigger("trips")["dag_run_id"])
    assert accelerated(stack, "trips") == sorted(source_trips(stack))


def test_failed_refresh_reports_the_error(stack):
    (stack.source_dir / "trips.csv").rename(stack.source_dir / "trips.csv.away")
    try:
        status = stack.wait_for_refresh("trips", stack.trigger("trips")["dag_run_id"])
    finally:
        (stack.source_dir / "trips.csv.away").rename(stack.source_dir / "trips.csv")
    assert status["state"] == "failed"
    assert status["error"]
    # A failed refresh leaves the old data.
    assert accelerated(stack, "trips") == sorted(source_trips(stack))
    with stack.client() as client:
        listing = client.get("/v1/datasets", params={"status": "true"}).json()
    assert {d["name"]: d["status"] for d in listing}["trips"] == "Error"


@pytest.mark.parametrize(
    ("user", "name", "body", "status", "message"),
    [
        ("admin", "nope", {}, 404, "Dataset nope not found"),
        ("admin", "trips", {"refresh_mode": "changes"}, 400, None),
        ("admin", "trips", {"refresh_sql": "SELECT * FROM read_csv('/etc/passwd')"}, 400, None),
        ("admin", "trips", {"bogus": 1}, 400, None),
        (None, "trips", {}, 401, "Not authenticated"),
        ("viewer", "trips", {}, 403, "Forbidden"),
    ],
)
def test_rejected_requests_create_no_run(stack, user, name, body, status, message):
    before = stack.dag_run_count("accelerate_trips")
    with stack.client(user) as client:
        response = client.post(f"/v1/datasets/{name}/acceleration/refresh", json=body)
    assert response.status_code == status, response.text
    assert list(response.json()) == ["message"]
    if message:
        assert response.json()["message"] == message
    assert stack.dag_run_count("accelerate_trips") == before


def test_list_with_status(stack):
    stack.wait_for_refresh("trips", stack.trigger("trips")["dag_run_id"])
    with stack.client("viewer") as client:
        response = client.get("/v1/datasets", params={"status": "true"})
    assert response.status_code == 200
    items = {d["name"]: d for d in response.json()}
    assert items["trips"] == {
        "from": f"file:{stack.source_dir}/trips.csv",
        "name": "trips",
        "replication_enabled": False,
        "acceleration_enabled": True,
        "status": "Ready",
        # Spice's map of custom properties: the engine and where its data lives (docs/api.md).
        "properties": {"engine": "duckdb", "location": str(stack.home / "accel" / "trips.duckdb")},
    }
